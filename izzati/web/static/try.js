/* The try-it page: builds {text, files} from the form (one input per parameter for a typed
   callback, key/value rows for a classic one) and sends it with izzati.js; with several routes,
   a selector picks the route whose form is shown and which is posted to. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const base = document.body.dataset.endpoint || "/";
  let endpoint = base;
  let objectUrl = null;

  function addField(key, value) {
    const row = document.createElement("div");
    row.className = "field";
    const keyInput = document.createElement("input");
    keyInput.type = "text";
    keyInput.className = "key";
    keyInput.placeholder = "key";
    keyInput.value = key || "";
    keyInput.setAttribute("aria-label", "field name");
    const valueInput = document.createElement("input");
    valueInput.type = "text";
    valueInput.className = "value";
    valueInput.placeholder = "value";
    valueInput.value = value || "";
    valueInput.setAttribute("aria-label", "field value");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.title = "remove this field";
    remove.textContent = "×";
    remove.addEventListener("click", () => row.remove());
    row.append(keyInput, valueInput, remove);
    $("fields").append(row);
    return row;
  }

  function collectText() {
    const text = {};
    for (const row of $("fields").querySelectorAll(".field")) {
      const key = row.querySelector(".key").value.trim();
      if (!key) continue;
      const value = row.querySelector(".value").value;
      if (!(key in text)) text[key] = value;
      else if (Array.isArray(text[key])) text[key].push(value);
      else text[key] = [text[key], value];
    }
    return text;
  }

  // each route's inputs: a typed callback's, one input per parameter built from the types
  // (izzati/fields.py), or null for a classic callback
  const routes = JSON.parse($("inputs").textContent || "{}");
  let typedInputs = null;
  const LONG_TEXT = /^(text|prompt|content|body|message|document|query)$/;

  function control(field) {
    let element;
    if (field.type === "file") {
      element = document.createElement("input");
      element.type = "file";
      if (field.accept.length) element.accept = field.accept.join(",");
      element.multiple = field.multiple;
    } else if (field.choices.length) {
      element = document.createElement("select");
      if (field.default === null) element.append(new Option("", "")); // no default: nothing chosen yet
      for (const choice of field.choices) element.append(new Option(String(choice), String(choice)));
      element.value = field.default === null ? "" : String(field.default);
    } else if (field.type === "boolean") {
      element = document.createElement("input");
      element.type = "checkbox";
      element.checked = field.default === true;
    } else if (field.type === "integer" || field.type === "number") {
      element = document.createElement("input");
      element.type = "number";
      element.step = field.type === "integer" ? "1" : "any";
      if (field.minimum !== null) element.min = String(field.minimum);
      if (field.maximum !== null) element.max = String(field.maximum);
      if (field.default !== null && !field.multiple) element.value = String(field.default);
    } else if (field.multiple || LONG_TEXT.test(field.name)) {
      element = document.createElement("textarea");
      if (field.multiple) element.placeholder = "one value per line";
      const given = field.default === null ? [] : [].concat(field.default);
      element.value = given.join("\n");
    } else {
      element = document.createElement("input");
      element.type = "text";
      element.value = field.default === null ? "" : String(field.default);
    }
    element.id = "in-" + field.name;
    element.name = field.name;
    element.className = "control";
    if (field.required) element.setAttribute("aria-required", "true");
    return element;
  }

  function buildTyped(fields) {
    $("classic-text").hidden = true;
    $("classic-files").hidden = true;
    $("typed").hidden = false;
    $("form").noValidate = true; // the service checks, and each message shows beside its field
    $("inputs-form").replaceChildren();
    for (const field of fields) {
      const row = document.createElement("div");
      row.className = "input";
      row.dataset.name = field.name;
      const label = document.createElement("label");
      label.htmlFor = "in-" + field.name;
      label.textContent = field.name + " ";
      if (field.required) {
        const mark = document.createElement("span");
        mark.className = "required";
        mark.textContent = "*";
        label.append(mark);
      }
      row.append(label);
      if (field.description) {
        const hint = document.createElement("small");
        hint.className = "hint";
        hint.textContent = field.description;
        row.append(hint);
      }
      const error = document.createElement("span");
      error.className = "field-error";
      error.hidden = true;
      row.append(control(field), error);
      $("inputs-form").append(row);
    }
  }

  function collectTyped() {
    const text = {};
    const files = {};
    for (const field of typedInputs) {
      const element = $("in-" + field.name);
      if (field.type === "file") {
        if (element.files.length) files[field.name] = Array.from(element.files);
      } else if (field.type === "boolean") {
        text[field.name] = element.checked ? "true" : "false";
      } else if (field.multiple) {
        const values = element.value.split("\n").map((each) => each.trim()).filter((each) => each !== "");
        if (values.length) text[field.name] = values;
      } else if (element.value !== "") {
        text[field.name] = element.value;
      }
    }
    return { text: text, files: files };
  }

  function clearFieldErrors() {
    for (const row of document.querySelectorAll("#inputs-form .input")) {
      row.classList.remove("invalid");
      const error = row.querySelector(".field-error");
      error.textContent = "";
      error.hidden = true;
    }
  }

  function showFieldErrors(reply) {
    const body = reply.text;
    if (reply.status !== 422 || !body || !Array.isArray(body.fields)) return;
    for (const problem of body.fields) {
      const row = document.querySelector('#inputs-form .input[data-name="' + CSS.escape(String(problem.loc[0])) + '"]');
      if (!row) continue;
      const error = row.querySelector(".field-error");
      error.textContent = (error.textContent ? error.textContent + "; " : "") + problem.msg;
      error.hidden = false;
      row.classList.add("invalid");
    }
  }

  function showFiles() {
    const list = $("file-list");
    list.replaceChildren();
    for (const file of $("files").files) {
      const item = document.createElement("li");
      item.textContent = file.name + " (" + file.size + " bytes)";
      list.append(item);
    }
  }

  function shellQuote(value) {
    return /^[\w@%+=:,./-]+$/.test(value) ? value : "'" + value.replace(/'/g, "'\\''") + "'";
  }

  function showCommand(text, files, apiKey) {
    const url = new URL(endpoint, window.location.href).href;
    const words = ["izzati", "send", url];
    for (const key of Object.keys(text)) {
      for (const value of [].concat(text[key])) words.push(shellQuote(key + "=" + value));
    }
    if (Array.isArray(files)) {
      for (const file of files) words.push("-f", shellQuote(file.name));
    } else {
      for (const name of Object.keys(files)) {
        for (const file of files[name]) words.push("-f", shellQuote(name + "=" + file.name));
      }
    }
    if (apiKey) words.push("-H", shellQuote("Authorization: Bearer $IZZATI_API_KEY"));
    $("command").textContent = words.join(" ");
    $("command-box").hidden = false;
  }

  function resetResult() {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
    for (const id of ["json", "image-box", "download-box", "hint-401"]) $(id).hidden = true;
    $("image").removeAttribute("src");
    $("result").classList.remove("error");
  }

  function showStatus(ok, message) {
    $("status").textContent = message;
    $("status").className = ok ? "ok" : "error";
    $("result").classList.toggle("error", !ok);
    $("result").hidden = false;
  }

  function showReply(reply, elapsed, usedKey) {
    const label = "HTTP " + reply.status + (reply.statusText ? " " + reply.statusText : "");
    showStatus(reply.ok, (reply.ok ? "" : "Error: ") + label + " · " + elapsed + " ms");
    if (reply.status === 401) {
      $("hint-401").textContent = usedKey
        ? "401 Unauthorized: the service refused this API key."
        : "401 Unauthorized: this service needs an API key. Fill in the API key field and send again.";
      $("hint-401").hidden = false;
    }
    if ("text" in reply) {
      $("json").textContent = typeof reply.text === "string" ? reply.text : JSON.stringify(reply.text, null, 2);
      $("json").hidden = false;
      return;
    }
    objectUrl = URL.createObjectURL(reply.blob);
    const type = reply.blob.type || "application/octet-stream";
    if (type.startsWith("image/")) {
      $("image").src = objectUrl;
      $("image").alt = reply.filename;
      $("image-box").hidden = false;
    }
    const link = $("download");
    link.href = objectUrl;
    link.download = reply.filename;
    link.textContent = "Download " + reply.filename;
    $("download-info").textContent = "(" + reply.blob.size + " bytes, " + type + ")";
    $("download-box").hidden = false;
  }

  async function showStream(response, started) {
    // a callback that yields: each item is shown as it arrives
    const items = [];
    showStatus(true, "HTTP " + response.status + " · streaming…");
    $("json").hidden = false;
    for await (const item of Izzati.items(response)) {
      items.push(item);
      $("json").textContent = items.map((each) => JSON.stringify(each)).join("\n");
      $("json").dataset.items = String(items.length);
    }
    const elapsed = Math.round(performance.now() - started);
    showStatus(true, "HTTP " + response.status + " · " + items.length + " items · " + elapsed + " ms");
  }

  async function submit(event) {
    event.preventDefault();
    resetResult();
    clearFieldErrors();
    const typed = typedInputs ? collectTyped() : null;
    const text = typed ? typed.text : collectText();
    const files = typed ? typed.files : Array.from($("files").files);
    const apiKey = $("api-key").value.trim();
    showCommand(text, files, apiKey);
    $("send").disabled = true;
    $("busy").hidden = false;
    const started = performance.now();
    try {
      const client = new Izzati(endpoint, { apiKey: apiKey || null });
      const response = await client.request({ text: text, files: files });
      if ((response.headers.get("content-type") || "").startsWith("application/x-ndjson") && response.body) {
        await showStream(response, started);
      } else {
        const reply = await client.read(response);
        showReply(reply, Math.round(performance.now() - started), Boolean(apiKey));
        if (typedInputs) showFieldErrors(reply);
      }
    } catch (err) {
      showStatus(false, "Could not reach the service: " + (err && err.message ? err.message : String(err)));
    } finally {
      $("send").disabled = false;
      $("busy").hidden = true;
    }
  }

  $("add-field").addEventListener("click", () => addField("", "").querySelector(".key").focus());
  $("files").addEventListener("change", showFiles);
  $("form").addEventListener("submit", submit);
  function choose(path) {
    // the form of the route at `path`, posting to it
    endpoint = base + path.replace(/^\//, "");
    typedInputs = routes[path] || null;
    $("post-path").textContent = "POST " + endpoint;
    resetResult();
    $("result").hidden = true;
    $("command-box").hidden = true;
    if (typedInputs) {
      buildTyped(typedInputs);
      return;
    }
    $("typed").hidden = true;
    $("inputs-form").replaceChildren();
    $("classic-text").hidden = false;
    $("classic-files").hidden = false;
    $("form").noValidate = false;
    $("fields").replaceChildren();
    $("files").value = "";
    showFiles();
    addField("", "");
  }

  const paths = Object.keys(routes);
  if (paths.length > 1) {
    for (const path of paths) $("route").append(new Option(path, path));
    $("route").addEventListener("change", () => choose($("route").value));
    $("route-box").hidden = false;
  }
  choose(paths.includes("/") || !paths.length ? "/" : paths[0]);
  if (paths.length > 1) $("route").value = paths.includes("/") ? "/" : paths[0];
})();
