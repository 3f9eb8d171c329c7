/*
 * izzati.js: the browser client of an izzati backend (no dependencies, no build step).
 *
 *   const izzati = new Izzati("http://127.0.0.1:5020/", {apiKey: "optional"});
 *   const reply = await izzati.send({text: {name: "alice"}, files: [input.files[0]]});
 *   if ("text" in reply) console.log(reply.text);          // a JSON reply, parsed
 *   else saveAs(reply.blob, reply.filename);               // a file reply
 *   for await (const item of izzati.stream({text: {prompt: "hi"}})) console.log(item); // a streamed reply
 *   const inputs = await izzati.describe();  // a typed service's inputs (null: a (text, data) one)
 *   await izzati.send({text: {n: 3}, files: {image: input.files[0]}});  // files by input name
 *
 * Same wire protocol as the original clients: POST multipart/form-data, text fields as form
 * fields (an array value sends the key once per item), files as parts named `file`, in order.
 * Every reply resolves (check `reply.ok` / `reply.status`; error replies are JSON
 * `{error, detail}` in `reply.text`); only a network failure or a timeout rejects.
 * Load it with <script src="/izzati.js"> (defines `Izzati`) or bundle it (CommonJS export).
 */
(function (root) {
  "use strict";

  function formValue(value) {
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
    return JSON.stringify(value);
  }

  function filePart(item) {
    if (typeof File !== "undefined" && item instanceof File) return [item, item.name];
    if (item instanceof Blob) return [item, "file"];
    if (item && typeof item === "object" && item.blob instanceof Blob) return [item.blob, item.filename || "file"];
    if (Array.isArray(item) && item.length === 2) return [item[1] instanceof Blob ? item[1] : new Blob([item[1]]), String(item[0])];
    return [new Blob([item]), "file"];
  }

  /** The filename a Content-Disposition header gives, or null. */
  function dispositionFilename(header) {
    if (!header) return null;
    const extended = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
    if (extended) {
      try {
        return decodeURIComponent(extended[2].trim().replace(/^"|"$/g, ""));
      } catch (e) {
        /* fall back to the plain filename */
      }
    }
    const quoted = /filename\s*=\s*"((?:\\.|[^"\\])*)"/i.exec(header);
    if (quoted) return quoted[1].replace(/\\(.)/g, "$1");
    const plain = /filename\s*=\s*([^;\s]+)/i.exec(header);
    return plain ? plain[1] : null;
  }

  /** The JSON items of a streamed (NDJSON) fetch `Response`, as they arrive. */
  async function* ndjsonItems(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (line.trim()) yield JSON.parse(line);
        }
      }
      if (pending.trim()) yield JSON.parse(pending);
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /** A typed operation's inputs from an OpenAPI document (as izzati/fields.py), or null. */
  function describeInputs(documentJson, path) {
    const operation = ((documentJson.paths || {})[path || "/"] || {}).post || {};
    if (!operation["x-izzati-typed"]) return null;
    const components = (documentJson.components || {}).schemas || {};
    const resolve = (schema) => {
      while (schema && schema.$ref) schema = components[schema.$ref.split("/").pop()] || {};
      return schema || {};
    };
    const content = (operation.requestBody || {}).content || {};
    const schema = resolve((content["multipart/form-data"] || {}).schema);
    const required = new Set(schema.required || []);
    return Object.entries(schema.properties || {}).map(([name, raw]) => {
      const own = resolve(raw);
      const options = (own.anyOf || []).map(resolve).filter((each) => each.type !== "null");
      const inner = options.length === 1 ? options[0] : own;
      const multiple = inner.type === "array";
      const item = multiple ? resolve(inner.items) : inner;
      const file = "x-izzati-file" in item;
      const pick = (key) => (key in raw ? raw[key] : own[key]);
      return {
        name: name,
        type: file ? "file" : item.type || "any",
        required: required.has(name),
        multiple: multiple,
        default: pick("default") === undefined ? null : pick("default"),
        has_default: pick("default") !== undefined,
        description: pick("description") || inner.description || "",
        choices: item.enum || ("const" in item ? [item.const] : []),
        minimum: "minimum" in item ? item.minimum : "exclusiveMinimum" in item ? item.exclusiveMinimum : null,
        maximum: "maximum" in item ? item.maximum : "exclusiveMaximum" in item ? item.exclusiveMaximum : null,
        accept: item["x-izzati-file"] || [],
      };
    });
  }

  function mediaType(response) {
    return (response.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
  }

  class Izzati {
    /**
     * A client for the izzati backend at `url` (default: the page's own origin, "/").
     * Options: apiKey (sent as `Authorization: Bearer <key>`), headers (sent with every
     * request), timeout (milliseconds, 0 = none), fetch (a fetch implementation).
     */
    constructor(url, options) {
      const opts = options || {};
      this.url = url === undefined || url === null ? "/" : String(url);
      this.apiKey = opts.apiKey || null;
      this.headers = Object.assign({}, opts.headers || {});
      this.timeout = opts.timeout || 0;
      this.fetch = opts.fetch || root.fetch.bind(root);
    }

    /** The request body for `{text, files}`: FormData, or null for an empty message. */
    body(message) {
      const text = (message && message.text) || {};
      const files = (message && message.files) || [];
      const form = new FormData();
      let parts = 0;
      for (const key of Object.keys(text)) {
        const value = text[key];
        if (value === undefined) continue;
        for (const item of Array.isArray(value) ? value : [value]) {
          form.append(key, formValue(item));
          parts += 1;
        }
      }
      // a list: parts named `file`, in order; an object: {input name: file or list}, for a typed service
      const named = Array.isArray(files) || (typeof FileList !== "undefined" && files instanceof FileList)
        ? Array.from(files).map((item) => ["file", item])
        : Object.keys(files).flatMap((name) => [].concat(Array.from(files[name])).map((item) => [name, item]));
      for (const [name, item] of named) {
        const [blob, filename] = filePart(item);
        form.append(name, blob, filename);
        parts += 1;
      }
      return parts ? form : null; // like the original clients: an empty send has no body
    }

    /**
     * The inputs of a typed service, from its /openapi.json: a list of `{name, type, required,
     * multiple, default, has_default, description, choices, minimum, maximum, accept}`; null for
     * a classic `(text, data)` service.
     */
    async describe() {
      const headers = Object.assign({}, this.headers);
      if (this.apiKey) headers.Authorization = "Bearer " + this.apiKey;
      const target = new URL(this.url, root.location ? root.location.href : undefined);
      const where = new URL("openapi.json", target);
      const response = await this.fetch(where.href, { headers: headers });
      if (!response.ok) throw new Error("izzati: " + where.href + ": HTTP " + response.status);
      const documentJson = await response.json();
      // the route the URL names: the longest documented path it ends with (also under a prefix)
      const called = target.pathname.replace(/\/+$/, "");
      const path = Object.keys(documentJson.paths || {})
        .filter((each) => each !== "/" && called.endsWith(each))
        .reduce((best, each) => (each.length > best.length ? each : best), "/");
      return describeInputs(documentJson, path);
    }

    /** POST `{text, files}` and resolve to the fetch `Response` itself. */
    async request(message, options) {
      const opts = options || {};
      const headers = Object.assign({}, this.headers, opts.headers || {});
      if (this.apiKey) headers.Authorization = "Bearer " + this.apiKey;
      const controller = new AbortController();
      const timeout = opts.timeout === undefined ? this.timeout : opts.timeout;
      const timer = timeout ? setTimeout(() => controller.abort(), timeout) : null;
      if (opts.signal) opts.signal.addEventListener("abort", () => controller.abort(), { once: true });
      try {
        return await this.fetch(this.url, {
          method: "POST",
          body: this.body(message),
          headers: headers,
          signal: controller.signal,
        });
      } catch (err) {
        if (timer !== null && controller.signal.aborted && !(opts.signal && opts.signal.aborted)) {
          const error = new Error("izzati: no reply from " + this.url + " within " + timeout + " ms");
          error.name = "TimeoutError";
          throw error;
        }
        throw err;
      } finally {
        if (timer !== null) clearTimeout(timer);
      }
    }

    /**
     * POST `{text: {...}, files: [...]}`; resolve to `{text}` for a JSON reply (the parsed
     * JSON) or `{blob, filename}` for a file reply, each with `ok`, `status`, `statusText`
     * and `response`.
     */
    async send(message, options) {
      return this.read(await this.request(message, options));
    }

    /**
     * POST `{text, files}` and iterate the reply's items as they arrive: each JSON item of a
     * streamed reply (NDJSON), each chunk (Uint8Array) of a bytes stream, or the one item of a
     * plain reply (an error reply too: `{error, detail}`). Leaving the loop early hangs up, and
     * the server stops the callback.
     */
    async *stream(message, options) {
      const response = await this.request(message, options);
      const type = mediaType(response);
      if (type !== "application/x-ndjson" || !response.body) {
        const reply = await this.read(response);
        yield "text" in reply ? reply.text : reply.blob;
        return;
      }
      yield* ndjsonItems(response);
    }

    /** A fetch `Response` as `send` resolves it; a streamed JSON reply's items are `text`. */
    async read(response) {
      const reply = { ok: response.ok, status: response.status, statusText: response.statusText, response: response };
      const type = mediaType(response);
      if (type === "application/x-ndjson") {
        const raw = await response.text();
        reply.text = raw.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
        return reply;
      }
      if (type === "application/json" || type.endsWith("+json")) {
        const raw = await response.text();
        try {
          reply.text = raw === "" ? null : JSON.parse(raw);
        } catch (e) {
          reply.text = raw;
        }
        return reply;
      }
      reply.blob = await response.blob();
      reply.filename = dispositionFilename(response.headers.get("content-disposition")) || "file";
      return reply;
    }
  }

  Izzati.dispositionFilename = dispositionFilename;
  Izzati.items = ndjsonItems;
  Izzati.describeInputs = describeInputs;

  if (typeof module === "object" && module && module.exports) module.exports = Izzati;
  root.Izzati = Izzati;
})(typeof globalThis !== "undefined" ? globalThis : this);
