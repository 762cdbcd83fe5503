"""The page: the Gradio drawing page and its `/compare` API, on one path (drawing -> reading ->
judgement -> view). It imports the core and the guard, never the lab."""
