"""Entity linking, a stage of its own: a company span -> its ticker, from an alias table learnt
on the corpus.

Where things live: ``keys`` (how names and tickers are keyed), ``headline`` (which spans a
headline writes as tickers, names, name-ticker pairs), ``table`` (the evidence model:
``Entry``, ``TickerEvidence``, ``AliasTable``, anchors), ``overrides`` (the user's fixes),
``files`` (what a table is built from and measured on), ``build`` (learning a table),
``linker`` (applying it where the product outputs entities), ``evaluate`` (scoring it).

Why learnt and not a bought symbol list: the names Benzinga writes ("BofA", "Alcoa", "North
Face", "ADP jobs report") are the ones the tagger outputs, and the corpus itself says which
ticker each one goes with, in three ways of different strength:

- ``adjacent`` (weight ``W_ADJACENT`` = 4): the name is written right before its ticker alone
  in brackets, ``Agilent Technologies (NYSE: A)``, ``Apple (AAPL)``. The headline states the
  pairing; only a typo in the headline makes it wrong. A bracketed list after a name ("Alcoa,
  Coach (AA, COH)") is not a pairing: it counts as ``listed``.
- ``listed`` (``W_LISTED`` = 2, shared by the headline's free explicit tickers): the headline
  shows tickers ("(BDE, VFC, JAH)", "$TSLA") that are not right after a name, so each name is
  only known to be one of them.
- ``symbol`` (``W_SYMBOL`` = 1, shared by the headline's free names): FNSPID's
  ``stock_symbol``, the stock page a headline was listed under. Noisy: analyst firms
  ("Mizuho Maintains Buy on Autodesk" is on ADSK's page), round-ups and "peers" headlines name
  companies that are not the page's, so it is the weakest source and it is shared by every
  name in the headline.

"Free" means not already paired by ``adjacent`` evidence in the same headline: in
"Apple (AAPL) Sues Samsung" on AAPL's page, AAPL is Apple's, and Samsung learns nothing.

A name's ``confidence`` in a ticker is that ticker's share of the name's evidence with a pseudo
count ``PRIOR`` (1.5) for "some ticker not seen yet": ``weight / (total + PRIOR)``. So one
stock-page sighting (1 / 2.5 = 0.4) is not enough to link (``MIN_SCORE`` = 0.5), one
explicit pairing is (4 / 5.5 = 0.73), and a name whose evidence is split between companies
("Apple" the fruit farmer vs Apple Inc., "Target" the word vs Target Corp., an analyst firm seen
on many stock pages) keeps all its candidates and a low confidence: it is never forced to one.

Stock-page evidence alone links a name only when the name looks like the page's company.
Checking the first tables by hand (names learnt from the train and silver files) showed why:
about half of the names linked by stock pages alone were the page company's counterparts, not
the company (Foxconn, Walgreens, Pershing Square, Delta, Cargill on the pages of Apple,
AmerisourceBergen, ADP, American Airlines, ADM). Benzinga files a company's own news on its
page, so a ticker's *anchors* are the names whose best ticker it is and that carry most of its
weight (at least ``ANCHOR_SHARE`` of the top name's), plus every name a headline writes right
before it (``adjacent``; a ticker list is too loose: "Silver" learnt ABX from one). A name
whose best ticker rests on co-occurrence alone is linked only if it is an anchor or resembles
one (a prefix, "Acadia" / "Acadia Pharmaceuticals"; a typo, "Adams Pharma" / "Adamas
Pharma"): spelling variants keep their links, counterparts lose them (``AliasTable.held``).
The cost is subsidiaries and acquired companies known only from their parent's page
("PharMEDium" on ABC's); an override or one explicit headline links them.

Spans that *are* tickers link to themselves: a span the headline shows as a ticker ("(A)",
"$TSLA", "NYSE: A", a ticker list; not an exchange, not "SharePoint(R)") gets score 1.0 when
the table knows that ticker (0.8 when not: the text says it is a ticker, only the symbol is
unverified). A bare all-caps span that is a known ticker of two letters or more ("ADP jobs
report") gets 0.7, but only after the name evidence, since ``HP`` may be written for HP Inc.
while HP is Helmerich & Payne's symbol; a bare "A" or "F" never links (as in
``common.spans``, one letter is a ticker only where the headline shows it as one). Bare
tickers get no co-occurrence evidence at build time, or "TSLA" in "AAPL, TSLA and MSFT
report" would learn AAPL.

Overrides (JSON or TOML, user-edited: name -> ticker, or name -> null / "" / false to unlink)
are read when the table is loaded, so a fix needs no rebuild; an override wins over everything
but a span the headline itself shows as a ticker.

Test titles never build a table: ``build.build_table`` drops every row whose normalised text is
protected (``training.silver.protected_texts`` of the test files) and refuses a test file as
an input, so the evaluation below measures held-out headlines.

``linker.link`` is dict lookups plus one regex pass per headline (``benchmarks/linking.py`` times it
against a tokenizer): it adds far less than 10% to a compact model's ~1 ms per headline.
"""
