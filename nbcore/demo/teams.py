"""The 30 teams, their conferences, and the names players are drawn from."""

EAST = ["ATL", "BOS", "BKN", "CHA", "CHI", "CLE", "DET", "IND", "MIA", "MIL", "NYK", "ORL", "PHI", "TOR", "WAS"]
WEST = ["DAL", "DEN", "GSW", "HOU", "LAC", "LAL", "MEM", "MIN", "NOP", "OKC", "PHX", "POR", "SAC", "SAS", "UTA"]
TEAMS = EAST + WEST
CONFERENCE = {**{t: "East" for t in EAST}, **{t: "West" for t in WEST}}

FIRST_NAMES = [
    "Aaron", "Andre", "Anthony", "Bam", "Ben", "Bojan", "Brandon", "Bruce", "Caleb", "Cam", "Chris", "Cole",
    "Darius", "De'Aaron", "Deni", "Derrick", "Desmond", "Devin", "Dillon", "Donovan", "Dyson", "Evan",
    "Franz", "Gary", "Grant", "Herb", "Isaiah", "Jalen", "Jamal", "Jaren", "Jayson", "Jordan", "Josh",
    "Jrue", "Julius", "Karl", "Keegan", "Kelly", "Kevin", "Khris", "Kyle", "LaMelo", "Luka", "Malik",
    "Marcus", "Mikal", "Myles", "Nikola", "Norman", "OG", "Paolo", "Pascal", "Quentin", "RJ", "Scottie",
    "Shai", "Spencer", "Terry", "Tobias", "Trae", "Tyrese", "Victor", "Walker", "Zach", "Álvaro", "Goran",
]
LAST_NAMES = [
    "Adams", "Allen", "Anderson", "Bane", "Barnes", "Beal", "Bogdanović", "Booker", "Bridges", "Brown",
    "Brunson", "Butler", "Caruso", "Collins", "Cunningham", "Davis", "DeRozan", "Dončić", "Edwards",
    "Fox", "Garland", "Gobert", "Green", "Haliburton", "Harden", "Harris", "Herro", "Holiday", "Hunter",
    "Ingram", "Jackson", "James", "Johnson", "Jokić", "Jones", "Kuzma", "LaVine", "Lillard", "Lowry",
    "Markkanen", "Martin", "Maxey", "McCollum", "Mitchell", "Morant", "Murray", "Nurkić", "Oladipo",
    "Paul", "Porter", "Randle", "Reaves", "Robinson", "Sabonis", "Siakam", "Smart", "Smith", "Tatum",
    "Thompson", "Towns", "Turner", "Valančiūnas", "VanVleet", "Walker", "Wiggins", "Williams", "Young",
]
SUFFIXES = ["", "", "", "", "", "", "", "", "", "", " Jr.", " II", " III"]
