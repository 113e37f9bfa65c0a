"""genlab studio: a local web page to train, watch, sample, draw, paint and listen.

    genlab studio [--runs DIR] [--host 127.0.0.1] [--port 8765]

server.py   `genlab studio`: the app under uvicorn
app.py      the JSON endpoints and the static page (static/: HTML, CSS, ES modules, no build)
guard.py    what a request may touch: paths inside runs, the bound Host, same-origin changes
library.py  the runs under the root: listed, loaded once per checkpoint, one heavy job each
jobs.py     the one training started from the page (a `genlab train` subprocess)
work.py     the model work: samples, latent walks, drawings, few-shot, painting
"""
