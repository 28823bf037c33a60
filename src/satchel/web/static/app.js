/* Satchel's browser behaviour: uploads, copy buttons, confirmations. No framework, no inline handlers. */
(function () {
  "use strict";

  var MAX_PARALLEL = 3;
  var UPLOADED_KEY = "satchel.uploaded";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Same units as the server's `filesize` filter: binary, one decimal place unless it is ".0".
  function formatSize(size) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var value = size;
    for (var i = 0; i < units.length; i++) {
      if (value < 1024 || i === units.length - 1) {
        return i === 0 ? value.toFixed(0) + " B" : value.toFixed(1).replace(/\.0$/, "") + " " + units[i];
      }
      value /= 1024;
    }
    return size + " B";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One polite live region for short announcements ("Copied", "Upload finished").
  var announcer = null;
  function announce(message) {
    if (!announcer) {
      announcer = el("div", "visually-hidden");
      announcer.setAttribute("role", "status");
      announcer.setAttribute("aria-live", "polite");
      document.body.appendChild(announcer);
    }
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = message; }, 50);
  }

  function problemDetail(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      if (body && (body.detail || body.title)) return body.detail || body.title;
    } catch (e) { /* not JSON */ }
    if (xhr.status === 0) return "The connection was lost before the upload finished.";
    return "Upload failed (" + xhr.status + (xhr.statusText ? " " + xhr.statusText : "") + ").";
  }

  /* ------------------------------------------------------- resumable uploads */

  // tus 1.0, against /api/uploads/ (the owner's page) or an upload link's /r/{token}/uploads/ (a stranger's):
  // each request carries at most `chunkSize` bytes (so a proxy's body limit never stops a big file), a dropped
  // connection is retried from the offset the server reports, and the upload's address is remembered per
  // endpoint and file, so choosing the same file after a reload resumes it.
  var RETRY_DELAYS = [1000, 2000, 4000, 8000, 15000, 30000, 30000, 30000];
  var RESUME_PREFIX = "satchel.upload:";
  var RESUME_FOR = 23 * 3600 * 1000; // a little under the server's default expiry

  function base64Utf8(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return window.btoa(binary);
  }

  function resumeStore(endpoint, file) {
    var key = RESUME_PREFIX + [endpoint, file.name, file.size, file.lastModified, file.type].join("|");
    return {
      get: function () {
        try {
          var saved = JSON.parse(window.localStorage.getItem(key) || "null");
          return saved && Date.now() - saved.at < RESUME_FOR ? saved.url : null;
        } catch (e) { return null; }
      },
      set: function (url) {
        try { window.localStorage.setItem(key, JSON.stringify({ url: url, at: Date.now() })); } catch (e) { /* private mode */ }
      },
      forget: function () {
        try { window.localStorage.removeItem(key); } catch (e) { /* private mode */ }
      }
    };
  }

  // `options.endpoint` is where uploads are created; `options.chunkSize` the most bytes one request carries.
  function resumableUpload(file, options, on) {
    var endpoint = options.endpoint;
    var chunkSize = options.chunkSize;
    var saved = resumeStore(endpoint, file);
    var url = saved.get();
    var offset = 0;
    var attempt = 0;
    var stopped = false;
    var current = null;

    function send(method, target, headers, body, progress) {
      return new Promise(function (resolve, reject) {
        var xhr = new XMLHttpRequest();
        current = xhr;
        xhr.open(method, target);
        xhr.setRequestHeader("Tus-Resumable", "1.0.0");
        xhr.setRequestHeader("X-CSRF-Token", csrfToken());
        xhr.setRequestHeader("Accept", "application/json");
        Object.keys(headers).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
        if (progress) xhr.upload.onprogress = progress;
        xhr.onload = function () { resolve(xhr); };
        xhr.onerror = function () { reject(xhr); };
        xhr.onabort = function () { reject(xhr); };
        xhr.send(body === undefined ? null : body);
      });
    }

    function sentSoFar(event) {
      if (event.lengthComputable) on.progress(offset + event.loaded, file.size);
    }

    function retryable(xhr) {
      return xhr.status === 0 || xhr.status === 409 || xhr.status === 423 || xhr.status === 429 || xhr.status >= 500;
    }

    function finished(xhr) {
      var fileId = xhr.getResponseHeader("Satchel-File-Id");
      if (!fileId) return false;
      saved.forget();
      on.done(fileId);
      return true;
    }

    function fail(xhr) {
      if (stopped) return;
      if (xhr.status === 404 || xhr.status === 410 || xhr.status === 413) saved.forget();
      on.failed(problemDetail(xhr));
    }

    function again(xhr) {
      if (stopped) return;
      if (!retryable(xhr) || attempt >= RETRY_DELAYS.length) { fail(xhr); return; }
      var delay = RETRY_DELAYS[attempt++];
      on.status("Connection lost; retrying in " + Math.round(delay / 1000) + " s…");
      window.setTimeout(function () { if (!stopped) (url ? locate() : create()); }, delay);
    }

    // Ask the server where the upload stands, then send the rest; a stale address starts afresh.
    function locate() {
      send("HEAD", url, {}).then(function (xhr) {
        if (xhr.status === 200 && Number(xhr.getResponseHeader("Upload-Length")) === file.size) {
          offset = Number(xhr.getResponseHeader("Upload-Offset")) || 0;
          if (finished(xhr)) return;
          if (offset > 0) on.status("Resuming at " + Math.floor((offset / file.size) * 100) + "%…");
          on.progress(offset, file.size);
          next();
        } else if (retryable(xhr)) {
          again(xhr);
        } else {
          saved.forget();
          url = null;
          create();
        }
      }, again);
    }

    function create() {
      var first = file.slice(0, chunkSize);
      var headers = {
        "Upload-Length": String(file.size),
        "Upload-Metadata": "filename " + base64Utf8(file.name) + ",filetype " + base64Utf8(file.type || ""),
        "Content-Type": "application/offset+octet-stream"
      };
      send("POST", endpoint, headers, first, sentSoFar).then(function (xhr) {
        if (xhr.status !== 201) { retryable(xhr) ? again(xhr) : fail(xhr); return; }
        url = xhr.getResponseHeader("Location");
        saved.set(url);
        offset = Number(xhr.getResponseHeader("Upload-Offset")) || 0;
        attempt = 0;
        if (!finished(xhr)) next();
      }, again);
    }

    function next() {
      if (stopped) return;
      var headers = { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" };
      send("PATCH", url, headers, file.slice(offset, offset + chunkSize), sentSoFar).then(function (xhr) {
        if (xhr.status !== 204) { again(xhr); return; }
        offset = Number(xhr.getResponseHeader("Upload-Offset"));
        attempt = 0;
        on.progress(offset, file.size);
        if (!finished(xhr)) next();
      }, again);
    }

    return {
      start: function () { url ? locate() : create(); },
      cancel: function () {
        stopped = true;
        if (current) current.abort();
        if (url) send("DELETE", url, {}).catch(function () { /* it expires on its own */ });
        saved.forget();
        on.cancelled();
      }
    };
  }

  /* ------------------------------------------------------------------ uploads */

  function initUploads() {
    var zone = document.getElementById("dropzone");
    var input = document.getElementById("upload-input");
    var list = document.getElementById("upload-list");
    var wrap = document.getElementById("uploads-wrap");
    var summary = document.getElementById("upload-summary");
    if (!zone || !input || !list || !wrap) return;

    var maxUpload = Number(zone.getAttribute("data-max-upload")) || 0;
    var chunkSize = Number(zone.getAttribute("data-chunk")) || 50 * 1024 * 1024;
    var queue = [];
    var active = 0;
    var batch = null;

    function newBatch() {
      return { total: 0, finished: 0, done: 0, failed: 0, cancelled: 0, uploaded: [] };
    }

    function makeRow(name, size) {
      var row = el("li", "upload");
      var label = el("div", "upload-name");
      label.appendChild(document.createTextNode(name));
      label.appendChild(el("span", "upload-size", formatSize(size)));
      label.title = name;
      var bar = el("progress");
      bar.max = Math.max(size, 1);
      bar.value = 0;
      bar.setAttribute("aria-label", "Upload progress of " + name);
      var status = el("span", "upload-status", "Waiting…");
      var action = el("div", "upload-action");
      row.appendChild(label);
      row.appendChild(bar);
      row.appendChild(status);
      row.appendChild(action);
      list.appendChild(row);
      wrap.hidden = false;
      return { row: row, bar: bar, status: status, action: action };
    }

    function setButton(item, text, handler) {
      item.ui.action.textContent = "";
      if (!text) return;
      var button = el("button", "btn btn-sm btn-ghost", text);
      button.type = "button";
      button.setAttribute("aria-label", text + " " + item.file.name);
      button.addEventListener("click", handler);
      item.ui.action.appendChild(button);
    }

    function updateSummary() {
      if (!batch || !summary) return;
      var left = batch.total - batch.finished;
      if (left > 0) {
        summary.textContent = "Uploading " + left + " of " + batch.total + " file" + (batch.total === 1 ? "" : "s") + "…";
      }
    }

    function finish(item, outcome, message) {
      if (item.state === "done" || item.state === "error" || item.state === "cancelled") return;
      item.state = outcome;
      active -= item.running ? 1 : 0;
      item.running = false;
      item.ui.row.classList.add("is-" + outcome);
      item.ui.status.textContent = message;
      if (outcome === "error") item.ui.status.setAttribute("role", "alert");
      setButton(item, null);
      batch.finished += 1;
      batch[outcome === "done" ? "done" : outcome === "error" ? "failed" : "cancelled"] += 1;
      updateSummary();
      pump();
      if (batch.finished === batch.total) batchFinished();
    }

    function batchFinished() {
      var b = batch;
      batch = null;
      if (b.failed === 0 && b.done > 0) {
        summary.textContent = "All done. Refreshing your file list…";
        announce(b.done + " file" + (b.done === 1 ? "" : "s") + " uploaded.");
        try {
          window.sessionStorage.setItem(UPLOADED_KEY, JSON.stringify(b.uploaded));
        } catch (e) { /* private mode: the list still refreshes */ }
        window.setTimeout(function () { window.location.reload(); }, 600);
        return;
      }
      summary.textContent = "";
      var parts = [];
      if (b.done) parts.push(b.done + " uploaded");
      if (b.failed) parts.push(b.failed + " failed");
      if (b.cancelled) parts.push(b.cancelled + " cancelled");
      summary.appendChild(document.createTextNode(parts.join(", ") + ". "));
      if (b.done) {
        var refresh = el("a", "", "Show them in the list");
        refresh.href = window.location.pathname + window.location.search;
        summary.appendChild(refresh);
      }
      announce(parts.join(", ") + ".");
    }

    function start(item) {
      item.state = "uploading";
      active += 1;
      item.running = true; // counted as active until it finishes, whatever request it is on
      item.ui.status.textContent = "0%";
      item.upload = resumableUpload(item.file, { endpoint: "/api/uploads/", chunkSize: chunkSize }, {
        progress: function (sent, total) {
          item.ui.bar.max = Math.max(total, 1);
          item.ui.bar.value = sent;
          var pct = Math.floor((sent / Math.max(total, 1)) * 100);
          item.ui.status.textContent = pct >= 100 ? "Finishing…" : pct + "%";
        },
        status: function (text) { item.ui.status.textContent = text; },
        done: function (fileId) {
          item.ui.bar.value = item.ui.bar.max;
          batch.uploaded.push({ id: fileId, name: item.file.name, size: item.file.size });
          finish(item, "done", "Done");
        },
        failed: function (message) { finish(item, "error", message); },
        cancelled: function () { finish(item, "cancelled", "Cancelled"); }
      });
      setButton(item, "Cancel", function () { item.upload.cancel(); });
      item.upload.start();
    }

    function pump() {
      while (active < MAX_PARALLEL && queue.length) {
        var item = queue.shift();
        if (item.state === "queued") start(item);
      }
    }

    function addFiles(files, folders) {
      if (!batch) {
        batch = newBatch();
        if (summary) summary.textContent = "";
      }
      batch.total += files.length; // counted up front, so an instant failure cannot end the batch early
      Array.prototype.forEach.call(files, function (file, index) {
        var item = { file: file, state: "queued", running: false, ui: makeRow(file.name, file.size) };
        if (folders && folders[index]) {
          finish(item, "error", "Folders can't be uploaded; zip it first.");
        } else if (maxUpload && file.size > maxUpload) {
          finish(item, "error", "Larger than the " + formatSize(maxUpload) + " limit per file.");
        } else {
          setButton(item, "Cancel", function () {
            if (item.state === "queued") finish(item, "cancelled", "Cancelled");
          });
          queue.push(item);
        }
      });
      updateSummary();
      pump();
    }

    input.addEventListener("change", function () {
      if (input.files && input.files.length) addFiles(input.files);
      input.value = "";
    });

    // Drag and drop: highlight while something hovers, never let the browser open a dropped file.
    var depth = 0;
    zone.addEventListener("dragenter", function (event) {
      event.preventDefault();
      depth += 1;
      zone.classList.add("is-dragover");
    });
    zone.addEventListener("dragover", function (event) {
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.classList.remove("is-dragover");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      depth = 0;
      zone.classList.remove("is-dragover");
      var transfer = event.dataTransfer;
      if (!transfer || !transfer.files || !transfer.files.length) return;
      var folders = [];
      if (transfer.items) {
        Array.prototype.forEach.call(transfer.items, function (entry) {
          if (entry.kind !== "file") return;
          var handle = entry.webkitGetAsEntry ? entry.webkitGetAsEntry() : null;
          folders.push(Boolean(handle && handle.isDirectory));
        });
      }
      addFiles(transfer.files, folders.length === transfer.files.length ? folders : null);
    });
    ["dragover", "drop"].forEach(function (type) {
      window.addEventListener(type, function (event) {
        if (!zone.contains(event.target)) event.preventDefault();
      });
    });
    zone.addEventListener("click", function (event) {
      if (event.target === zone) input.click();
    });

    window.addEventListener("beforeunload", function (event) {
      if (active > 0 || queue.some(function (item) { return item.state === "queued"; })) {
        event.preventDefault();
        event.returnValue = "";
      }
    });

    // After the reload that follows a finished batch: show what was uploaded, highlight the new rows.
    var saved = null;
    try {
      saved = JSON.parse(window.sessionStorage.getItem(UPLOADED_KEY) || "null");
      window.sessionStorage.removeItem(UPLOADED_KEY);
    } catch (e) { saved = null; }
    if (saved && saved.length) {
      saved.forEach(function (entry) {
        var ui = makeRow(entry.name, entry.size || 0);
        ui.bar.value = ui.bar.max;
        ui.row.classList.add("is-done");
        ui.status.textContent = "Done";
        if (entry.id) {
          var row = document.querySelector('tr[data-file-id="' + String(entry.id).replace(/["\\]/g, "") + '"]');
          if (row) row.classList.add("is-new");
        }
      });
      if (summary) summary.textContent = saved.length + " file" + (saved.length === 1 ? "" : "s") + " uploaded.";
    }
  }

  /* ------------------------------------------------------------ file selection */

  function initSelection() {
    var form = document.getElementById("files-form");
    if (!form) return;
    var boxes = Array.prototype.slice.call(form.querySelectorAll("input.file-check"));
    var all = document.getElementById("select-all");
    var count = document.getElementById("selection-count");
    var idle = count ? count.textContent : "";

    function refresh() {
      var chosen = boxes.filter(function (box) { return box.checked; }).length;
      boxes.forEach(function (box) {
        var row = box.closest("tr");
        if (row) row.classList.toggle("is-selected", box.checked);
      });
      if (all) {
        all.checked = chosen > 0 && chosen === boxes.length;
        all.indeterminate = chosen > 0 && chosen < boxes.length;
      }
      if (count) count.textContent = chosen ? chosen + " file" + (chosen === 1 ? "" : "s") + " selected" : idle;
    }

    boxes.forEach(function (box) { box.addEventListener("change", refresh); });
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
        refresh();
      });
    }
    form.addEventListener("submit", function (event) {
      if (!boxes.some(function (box) { return box.checked; })) {
        event.preventDefault();
        if (count) count.textContent = "Select at least one file first.";
        if (boxes[0]) boxes[0].focus();
      }
    });
    refresh();
  }

  /* ------------------------------------------------------------- copy buttons */

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP hosts have no async clipboard: fall back to a selected, hidden textarea.
    return new Promise(function (resolve, reject) {
      var area = el("textarea", "visually-hidden");
      area.value = text;
      area.setAttribute("readonly", "");
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }

  function initCopy() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("[data-copy-target]") : null;
      if (!button) return;
      var target = document.getElementById(button.getAttribute("data-copy-target"));
      if (!target) return;
      var text = "value" in target && target.tagName !== "CODE" ? target.value : target.textContent;
      // A snippet is copied exactly as shown (its indentation and last line break included); a link is trimmed.
      if (!button.hasAttribute("data-copy-exact")) text = text.trim();
      var label = button.querySelector("[data-copy-label]") || button;
      var original = label.getAttribute("data-original") || label.textContent;
      label.setAttribute("data-original", original);
      copyText(text).then(function () {
        label.textContent = "Copied";
        button.classList.add("is-done");
        announce("Copied to the clipboard.");
      }, function () {
        if (target.select) target.select();
        label.textContent = "Press Ctrl+C";
        announce("Copying failed; the text is selected, press Control C to copy it.");
      }).then(function () {
        window.clearTimeout(button._copyTimer);
        button._copyTimer = window.setTimeout(function () {
          label.textContent = original;
          button.classList.remove("is-done");
        }, 2000);
      });
    });
    // Clicking a read-only link field selects it all, ready to copy by hand.
    Array.prototype.forEach.call(document.querySelectorAll("input[readonly]"), function (field) {
      field.addEventListener("focus", function () { field.select(); });
    });
  }

  /* ------------------------------------------------------ upload requests */

  // The page of an upload link: each chosen file goes up through the link's tus endpoint with the same client
  // as the owner's page (requests of at most `data-chunk` bytes, retries from the server's offset, and after
  // a reload, the same file chosen again carries on). One at a time, so the link's file and size limits are
  // met in the order the files were chosen.
  function initRequestUploads() {
    var zone = document.getElementById("request-dropzone");
    if (!zone) return;
    var input = document.getElementById("request-input");
    var list = document.getElementById("request-uploads");
    var endpoint = zone.getAttribute("data-request-uploads");
    var chunkSize = Number(zone.getAttribute("data-chunk")) || 50 * 1024 * 1024;
    var queue = [];
    var current = null;

    function row(file) {
      var item = el("li", "upload");
      var label = el("div", "upload-name");
      label.appendChild(document.createTextNode(file.name));
      label.appendChild(el("span", "upload-size", formatSize(file.size)));
      label.title = file.name;
      var bar = el("progress");
      bar.max = Math.max(file.size, 1);
      bar.value = 0;
      bar.setAttribute("aria-label", "Progress of " + file.name);
      var status = el("span", "upload-status", "Waiting…");
      item.appendChild(label);
      item.appendChild(bar);
      item.appendChild(status);
      list.appendChild(item);
      return { file: file, item: item, bar: bar, status: status };
    }

    function settle(job, ok, message) {
      job.item.classList.add(ok ? "is-done" : "is-error");
      if (ok) job.bar.value = job.bar.max;
      job.status.textContent = message;
      if (!ok) job.status.setAttribute("role", "alert");
      announce(job.file.name + (ok ? " sent." : " was not sent."));
      current = null;
      next();
    }

    function next() {
      if (current || !queue.length) return;
      var job = current = queue.shift();
      job.status.textContent = "0%";
      resumableUpload(job.file, { endpoint: endpoint, chunkSize: chunkSize }, {
        progress: function (sent, total) {
          job.bar.value = sent;
          var pct = Math.floor((sent / Math.max(total, 1)) * 100);
          job.status.textContent = pct >= 100 ? "Finishing…" : pct + "%";
        },
        status: function (text) { job.status.textContent = text; },
        done: function () { settle(job, true, "Sent"); },
        failed: function (message) { settle(job, false, message); },
        cancelled: function () { settle(job, false, "Cancelled"); }
      }).start();
    }

    function add(files) {
      for (var i = 0; i < files.length; i++) queue.push(row(files[i]));
      next();
    }

    input.addEventListener("change", function () { add(input.files); input.value = ""; });
    zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("is-dragover"); });
    zone.addEventListener("dragleave", function () { zone.classList.remove("is-dragover"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("is-dragover");
      if (event.dataTransfer && event.dataTransfer.files) add(event.dataTransfer.files);
    });
    window.addEventListener("beforeunload", function (event) {
      if (current || queue.length) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  /* ------------------------------------------------- a limited link's count */

  // A link with a download limit says how many are left. A download leaves the page where it is, so after one
  // starts the page asks the link's status (`data-share-status`: the count and expiry, nothing the page does not
  // show already) until the count has moved; when the link has ended, it says why and its download buttons go.
  var STATUS_DELAYS = [300, 700, 1500, 3000, 6000, 12000];

  function initDownloadsLeft() {
    var card = document.querySelector("[data-share-status]");
    if (!card) return;
    var url = card.getAttribute("data-share-status");
    var count = card.querySelector("[data-downloads-left]");
    var ended = card.querySelector("[data-link-ended]");
    var timer = null;
    var over = false;

    function shown() { return count ? Number(count.getAttribute("data-downloads-left")) : null; }

    function showCount(left) {
      if (!count || left === null || left === shown()) return false;
      count.setAttribute("data-downloads-left", String(left));
      count.textContent = "\u00b7 " + left + " download" + (left === 1 ? "" : "s") + " left";
      announce(left + " download" + (left === 1 ? "" : "s") + " left on this link.");
      return true;
    }

    function showEnded(detail) {
      over = true;
      window.clearTimeout(timer);
      if (count) count.parentNode.removeChild(count);
      count = null;
      var gone = document.querySelectorAll('a[download][href^="/s/"], .public-files .view, .public-all, .public-footnote');
      Array.prototype.forEach.call(gone, function (node) { node.parentNode.removeChild(node); });
      if (ended) {
        ended.textContent = detail + " Its files can no longer be downloaded here.";
        ended.hidden = false;
      }
    }

    // Asks once; `then(moved)` hears whether the count changed (or the link ended).
    function ask(then) {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          return response.json().then(function (body) { return { status: response.status, body: body }; });
        })
        .then(function (answer) {
          if (answer.status === 410) {
            showEnded(answer.body.detail || "This link no longer works.");
            then(true);
          } else {
            then(answer.status === 200 && showCount(answer.body.downloads_left));
          }
        }, function () { then(false); });
    }

    function follow(attempt) {
      window.clearTimeout(timer);
      if (over || attempt >= STATUS_DELAYS.length) return;
      timer = window.setTimeout(function () {
        ask(function (moved) { if (!moved) follow(attempt + 1); });
      }, STATUS_DELAYS[attempt]);
    }

    document.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest('a[download][href^="/s/"]') : null;
      if (link) follow(0);
    });
    // Someone else may have used a download while this tab was in the background.
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && !over) ask(function () {});
    });
  }

  /* ------------------------------------------------------------ confirmations */

  function initConfirm() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form || !form.hasAttribute || !form.hasAttribute("data-confirm")) return;
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    }, true);
  }

  function init() {
    initUploads();
    initRequestUploads();
    initDownloadsLeft();
    initSelection();
    initCopy();
    initConfirm();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
