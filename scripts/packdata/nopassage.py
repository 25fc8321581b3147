"""In-domain-sounding questions the pack's documents do not answer: (question, topic, who to ask)."""

CARE = "Please ask your care team; they know your health history."
LAWYER = "For this, please ask a lawyer who can read the whole contract."
FORUM = "The Syncthing forum at forum.syncthing.net is a good place to ask."
MENTOR = "A local timber merchant or an experienced penguin wood worker would be the one to ask."

NO_PASSAGE = {
    "diabetes": [
        (
            "How many units of insulin should I take before dinner?",
            "insulin doses for your meals",
            "I can't give a dose. " + CARE,
        ),
        (
            "Can I double my metformin if my sugar is high today?",
            "changing your metformin dose",
            "Please do not change a medicine on your own. " + CARE,
        ),
        (
            "Which brand of glucose meter is the most accurate?",
            "comparing brands of glucose meters",
            "Your care team or pharmacist can help you choose a meter.",
        ),
        (
            "Is the new weekly insulin pen better than my daily one?",
            "comparing specific insulin pens",
            CARE,
        ),
        (
            "What should my blood sugar be after running a marathon?",
            "blood sugar targets for marathon running",
            CARE,
        ),
        (
            "Can I take my diabetes pills with grapefruit juice?",
            "grapefruit juice and diabetes pills",
            "Your pharmacist or care team can check this for your medicines.",
        ),
        (
            "How much does an insulin pump cost in Germany?",
            "insulin pump prices in Germany",
            "Your health insurer or care team can tell you about costs.",
        ),
        (
            "Is it safe to get a tattoo if I have type 1 diabetes?",
            "tattoos and type 1 diabetes",
            CARE,
        ),
        (
            "What is the newest artificial pancreas approved this year?",
            "the newest artificial pancreas devices",
            "Your diabetes care team can tell you what is available now.",
        ),
        (
            "Should I skip my insulin on a fasting day during Ramadan?",
            "insulin during religious fasting",
            "Please do not skip or change insulin on your own. " + CARE,
        ),
        (
            "Can my cat get diabetes from eating my snacks?",
            "diabetes in pets",
            "A vet is the right person to ask about your cat.",
        ),
        (
            "How do I set the alarms on my continuous glucose monitor?",
            "setting alarms on a specific glucose monitor",
            "The device maker's guide or your diabetes educator can show you.",
        ),
        (
            "What dose of vitamin D should a person with diabetes take?",
            "vitamin D doses",
            "I can't give a dose. " + CARE,
        ),
        (
            "Is keto or vegan better for reversing diabetes?",
            "comparing keto and vegan diets",
            "A dietitian on your care team can help you plan meals.",
        ),
        (
            "How many carbs are in a bowl of pho?",
            "the carbohydrate count of specific dishes",
            "A dietitian or a food label can help with carb counts.",
        ),
    ],
    "contracts": [
        (
            "Is a non-compete enforceable in California?",
            "how California courts treat non-competes",
            LAWYER,
        ),
        (
            "How much should I charge a client for a late payment under my invoice terms?",
            "setting late payment fees for invoices",
            "An accountant or lawyer can advise on late fees.",
        ),
        (
            "Can you draft an employment contract for my first hire?",
            "employment contracts",
            "An employment lawyer can draft one for you.",
        ),
        (
            "What is the statute of limitations for breach of contract in Texas?",
            "statutes of limitation in Texas",
            LAWYER,
        ),
        (
            "Do I need to register my trademark before signing a license deal?",
            "trademark registration",
            "A trademark attorney can advise you.",
        ),
        (
            "What tax do I owe on royalty income from a license agreement?",
            "taxes on royalty income",
            "A tax adviser is the right person to ask.",
        ),
        (
            "Can I sue my landlord over a broken heating system?",
            "residential leases and landlord disputes",
            "A tenant's rights group or a lawyer can help.",
        ),
        (
            "How do I file a lawsuit in small claims court?",
            "small claims court procedures",
            "Your local court's help desk or a lawyer can explain the steps.",
        ),
        (
            "Is an electronic signature valid on a contract signed in Germany?",
            "e-signature rules in Germany",
            LAWYER,
        ),
        (
            "What are typical payment terms in construction contracts?",
            "construction contract payment terms",
            LAWYER,
        ),
        (
            "Does GDPR require a data processing agreement with my vendor?",
            "GDPR data processing agreements",
            "A data protection lawyer can advise you.",
        ),
        (
            "How do I get out of my gym membership contract?",
            "consumer gym membership contracts",
            "A consumer advice service can help with this.",
        ),
        (
            "What clauses should a prenuptial agreement include?",
            "prenuptial agreements",
            "A family lawyer is the right person to ask.",
        ),
        (
            "Can a verbal agreement over the phone be binding?",
            "whether verbal agreements are binding",
            LAWYER,
        ),
        (
            "How much does a lawyer usually charge to review a contract?",
            "lawyers' fees for contract review",
            "Your local bar association can give guidance on fees.",
        ),
    ],
    "support": [
        (
            "How do I sync my files with Dropbox using Syncthing?",
            "connecting Syncthing to Dropbox",
            FORUM,
        ),
        ("Does Syncthing work on a PlayStation 5?", "running Syncthing on game consoles", FORUM),
        (
            "What is the monthly price of Syncthing Pro?",
            "a paid Syncthing Pro plan",
            "Syncthing itself is free and open source; " + FORUM,
        ),
        (
            "How do I recover a file I deleted three years ago without versioning?",
            "recovering old deletions without versioning",
            "A file recovery tool or your backups are the place to look. " + FORUM,
        ),
        (
            "Can Syncthing sync my WhatsApp chats between two phones?",
            "syncing WhatsApp chats",
            "WhatsApp's own help pages cover moving chats.",
        ),
        (
            "How do I configure Syncthing with my Synology's Active Directory single sign-on?",
            "Active Directory single sign-on on Synology",
            FORUM,
        ),
        (
            "Why does my Android app crash on Samsung phones after the update?",
            "crashes of the Android app on Samsung phones",
            "The Android app's issue tracker or " + FORUM,
        ),
        (
            "Which NAS brand gives the fastest Syncthing transfers?",
            "comparing NAS brands for speed",
            FORUM,
        ),
        ("How do I sync my Outlook calendar with Syncthing?", "syncing Outlook calendars", FORUM),
        (
            "Can I stream movies to my smart TV with Syncthing?",
            "streaming video to smart TVs",
            FORUM,
        ),
        ("How do I set up Syncthing on a Tesla car computer?", "running Syncthing in a car", FORUM),
        (
            "What is the maximum number of devices the Syncthing cloud plan allows?",
            "a Syncthing cloud plan",
            "Syncthing has no cloud plan; " + FORUM,
        ),
        (
            "How do I connect Syncthing to Google Drive?",
            "connecting Syncthing to Google Drive",
            FORUM,
        ),
        ("Is there a Syncthing plugin for Microsoft Teams?", "a Microsoft Teams plugin", FORUM),
        (
            "How do I back up my iPhone photos with the official Syncthing iOS app?",
            "an official iOS app for photo backup",
            FORUM,
        ),
    ],
    "penguin-wood": [
        (
            "What does a board of penguin wood cost per cubic metre in euros?",
            "current penguin wood prices in euros",
            MENTOR,
        ),
        ("Can I turn penguin wood bowls on a lathe?", "turning penguin wood on a lathe", MENTOR),
        ("Is penguin wood good for carving spoons?", "carving spoons from penguin wood", MENTOR),
        (
            "How does penguin wood compare with walnut for a guitar body?",
            "using penguin wood for guitars",
            MENTOR,
        ),
        (
            "Can I burn penguin wood offcuts in my wood stove?",
            "burning offcuts in a stove",
            "Check with your stove maker and local rules before burning any treated or resinous offcuts.",
        ),
        ("Which shops in Berlin sell penguin wood?", "where to buy penguin wood in Berlin", MENTOR),
        ("Can I steam-bend penguin wood for chair backs?", "steam-bending penguin wood", MENTOR),
        ("What CNC feed rates work for penguin wood?", "CNC feeds and speeds", MENTOR),
        (
            "Is penguin wood safe for a baby's teething toy?",
            "penguin wood toys for babies",
            "Please ask a toy safety specialist before making anything a baby will chew.",
        ),
        ("How do I laser-engrave penguin wood?", "laser engraving penguin wood", MENTOR),
        ("Can penguin wood be used for a boat hull?", "boat building with penguin wood", MENTOR),
        (
            "What stain colour makes penguin wood look like oak?",
            "staining penguin wood to look like oak",
            MENTOR,
        ),
        (
            "How do I make a penguin wood cutting board that is food safe?",
            "food-safe cutting boards",
            MENTOR,
        ),
        (
            "Will penguin wood flooring work with underfloor heating?",
            "penguin wood flooring over underfloor heating",
            MENTOR,
        ),
        (
            "How long do penguin wood trees take to grow from seed to 2 metres?",
            "seedling growth rates",
            "The Calloway Forestry Board would know.",
        ),
    ],
}
