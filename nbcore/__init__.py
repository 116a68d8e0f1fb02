"""nbcore: the library behind the backfill runbook notebooks.

Every stage is a function with typed inputs and a result object; the notebooks in
``notebooks/`` only wire parameters to these functions and display the results.
"""

__version__ = "0.1.0"
