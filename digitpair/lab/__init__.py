"""The lab: what trains, records, reports and publishes (the training loop, studies, run records,
reports, model cards, the Hub). The page never imports it."""
