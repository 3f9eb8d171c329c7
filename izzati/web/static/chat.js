/* The try-it page's chat box: streams POST v1/chat/completions as an OpenAI client would. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const models = (document.body.dataset.chat || "").split(",").filter(Boolean);
  if (!models.length) return;
  const url = (document.body.dataset.endpoint || "/") + "v1/chat/completions";
  const messages = [];

  for (const name of models) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    $("chat-model").append(option);
  }
  $("chat-box").hidden = false;

  function bubble(role, text) {
    const item = document.createElement("p");
    item.className = "chat-" + role;
    item.textContent = text;
    $("chat-log").append(item);
    return item;
  }

  function failed(item, message) {
    item.className = "chat-error";
    item.textContent = message;
  }

  async function* events(response) {
    // Server-Sent Events: "data: <JSON>" blocks separated by a blank line, ending with [DONE]
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6));
        if (!data.length) continue;
        if (data.join("\n") === "[DONE]") return;
        yield JSON.parse(data.join("\n"));
      }
    }
  }

  async function chat(event) {
    event.preventDefault();
    const text = $("chat-input").value;
    if (!text.trim()) return;
    $("chat-input").value = "";
    messages.push({ role: "user", content: text });
    bubble("user", text);
    const answer = bubble("assistant", "");
    $("chat-send").disabled = true;
    const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    const apiKey = $("api-key").value.trim();
    if (apiKey) headers.Authorization = "Bearer " + apiKey;
    try {
      const body = { model: $("chat-model").value, messages: messages, stream: true };
      const response = await fetch(url, { method: "POST", headers: headers, body: JSON.stringify(body) });
      if (!response.ok) {
        const reply = await response.json().catch(() => ({}));
        const detail = reply.error && reply.error.message ? reply.error.message : response.statusText;
        failed(answer, "HTTP " + response.status + ": " + detail);
        messages.pop();
        return;
      }
      for await (const chunk of events(response)) {
        if (chunk.error) {
          failed(answer, "Error: " + chunk.error.message);
          break;
        }
        const choice = (chunk.choices || [])[0];
        if (choice && choice.delta && choice.delta.content) answer.textContent += choice.delta.content;
        if (choice && choice.finish_reason) answer.dataset.finish = choice.finish_reason;
      }
      messages.push({ role: "assistant", content: answer.textContent });
    } catch (err) {
      failed(answer, "Could not reach the service: " + (err && err.message ? err.message : String(err)));
      messages.pop();
    } finally {
      $("chat-send").disabled = false;
    }
  }

  $("chat-form").addEventListener("submit", chat);
})();
