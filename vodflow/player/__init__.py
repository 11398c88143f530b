"""The watch page's static files (`index.html`, `player.js`, `player.css`) and the players it runs, vendored
from their pinned npm packages (`vendor/`: hls.js 1.7.4, Apache-2.0; dash.js 5.2.1, BSD-3-Clause; `make
player-vendor`). Served by `vodflow.storage.watch`; no Python here."""
