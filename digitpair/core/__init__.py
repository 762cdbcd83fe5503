"""The core: what every path needs (the config, the data, the networks, drawing, the weights); torch
only, no training loop. Nothing here imports the guard, the lab or the page."""
