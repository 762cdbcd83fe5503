"""The page: the Gradio drawing page and its `/compare` API, on one path (drawing -> reading ->
judgement -> view). served.py loads the networks; compare.py takes two drawings through them and
the guard to one `Comparison`, which `/compare` returns as JSON and view.py (with page.css and
cards.css) shows; about.py writes the About panel; page.js is the code in the browser. It imports
the core and the guard, never the lab."""
