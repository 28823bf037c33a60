"""The peer baseline: a small Flask file host, as such hosts run, under ``gunicorn -w N`` sync workers.

An index page rendered from a template, and files sent from a folder (``BENCH_FILES``) through the WSGI
file wrapper, which Gunicorn turns into ``sendfile``: the work Satchel's share page and download do,
without accounts, a database or storage adapters.

    gunicorn --chdir bench -w 2 baseline_flask:app
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, render_template, send_from_directory
from jinja2 import DictLoader
from werkzeug.wrappers import Response

FILES = Path(os.environ.get("BENCH_FILES", "."))
INDEX = """<!doctype html>
<html><head><title>{{ name }}</title></head>
<body>
<h1>{{ name }}</h1>
<p>Upload with <code>curl -F'file=@yourfile.png' {{ url }}</code>; files are kept for {{ days }} days.</p>
<p>Up to {{ max_mib }} MiB per file. Terms of service apply.</p>
</body></html>
"""

app = Flask(__name__)
app.jinja_loader = DictLoader({"index.html": INDEX})  # compiled once and cached, as a template file would be


@app.get("/")
def index() -> str:
    return render_template("index.html", name="file host", url="http://localhost/", days=30, max_mib=512)


@app.get("/files/<path:name>")
def download(name: str) -> Response:
    return send_from_directory(FILES, name, as_attachment=True)
