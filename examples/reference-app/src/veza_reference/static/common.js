"use strict";
// What every demo page shares: the API call, money as money, errors in a buyer's words,
// and "who is this browser". Plain JS, no build step; loaded before each page's script.
// The DOM is built with text APIs only: nothing from the API is ever parsed as HTML.
(function () {
  const $ = (id) => document.getElementById(id);

  // el("td", { className: "x" }, "text", child): an element with properties and children
  function el(tag, props, ...children) {
    const node = Object.assign(document.createElement(tag), props || {});
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  // Amounts travel as integer minor units with an ISO 4217 code. How many minor units
  // make one unit is the currency's exponent (EUR 2, JPY 0, KWD 3): Intl knows it as
  // the currency format's fraction digits, so 199 EUR is 1.99 € and 199 JPY is ¥199.
  const formats = new Map();
  function money(minor, currency) {
    const code = (currency || "EUR").toUpperCase();
    if (!formats.has(code)) formats.set(code, new Intl.NumberFormat(undefined, { style: "currency", currency: code }));
    const format = formats.get(code);
    const exponent = format.resolvedOptions().maximumFractionDigits;
    return format.format(Number(minor) / 10 ** exponent);
  }

  // The API answers errors as {"error": {"type", "message"}}: the type is a code for
  // programs, the message is for developers (it may speak of transitions and cents).
  // A person reads these sentences instead.
  const BY_TYPE = {
    RefundExceedsCapturedError: "That refund is more than what is left to refund on this order.",
    IllegalTransitionError: "This order cannot be changed that way any more: it may already be paid or refunded. Open it again to see where it stands.",
    TransitionConflictError: "This order was changed at the same moment by someone else. Open it again and retry.",
    RecordNotFoundError: "We could not find that order or payment.",
    IdempotencyConflictError: "This request was already sent with different details. Reload the page and try again.",
    PaymentBlockedError: "The payment was declined. Try another payment method.",
    FlowConflictError: "This order already exists with other details. Reload the page and try again.",
    unauthenticated: "Log in first.",
    forbidden: "Your account is not allowed to do this.",
    rate_limited: "Too many attempts in a short time: wait a moment and try again.",
  };
  const BY_STATUS = {
    400: "That request was not accepted. Check what you entered and try again.",
    401: "Log in first.",
    402: "The payment has not gone through yet.",
    403: "Your account is not allowed to do this.",
    404: "That could not be found: it may have been removed.",
    409: "That conflicts with something that already happened. Reload the page and try again.",
    413: "That file is too large.",
    422: "Some of what you entered was not accepted. Check it and try again.",
    429: "Too many attempts in a short time: wait a moment and try again.",
  };
  const OUTAGE = "The service is not answering right now. Nothing was charged twice: try again in a minute.";

  class ApiError extends Error {
    constructor(status, type, detail) {
      super(ApiError.words(status, type, detail));
      this.status = status;
      this.type = type;
      this.detail = detail;  // the developer's message: logged, never shown as the error
    }

    static words(status, type, detail) {
      // 415 (not audio) carries a message written for the person uploading
      if (status === 415 && typeof detail === "string") return detail;
      if (type && BY_TYPE[type]) return BY_TYPE[type];
      if (BY_STATUS[status]) return BY_STATUS[status];
      if (status >= 500) return OUTAGE;
      return "Something went wrong. Try again.";
    }
  }

  // Any thrown value as a sentence: API errors in words, a dropped connection too.
  function explain(err) {
    if (err instanceof ApiError) return err.message;
    if (err instanceof TypeError) return "The server could not be reached. Check your connection and try again.";
    return "Something went wrong. Try again.";
  }

  const session = { user: null, role: null, csrf: null };

  async function api(method, path, body, extraHeaders) {
    const headers = Object.assign({}, extraHeaders || {});
    if (body) headers["content-type"] = "application/json";
    if (session.csrf && method !== "GET") headers["x-csrf-token"] = session.csrf;
    const response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      throw new ApiError(response.status, error.type || null, error.message || null);
    }
    return data;
  }

  // "Who is this browser?" /api/v1/auth/session answers 200 with {"user": null} when
  // nobody is logged in (/me's 401 would be a console error on every logged-out visit).
  async function whoAmI() {
    const answer = await api("GET", "/api/v1/auth/session");
    const user = answer.user || { user_id: null, role: null, csrf_token: null };
    Object.assign(session, { user: user.user_id, role: user.role, csrf: user.csrf_token });
    return session;
  }

  // One key per user action: the same click retried is the same request to the server.
  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));  // works on plain http too
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // A status line that shows one message at a time: success (ok) or error, never a stale one.
  function say(node, text, kind) {
    node.textContent = text || "";
    node.className = text ? (kind === "error" ? "error" : "ok") : "";
  }

  window.vezaUi = { $, el, money, explain, api, ApiError, session, whoAmI, newKey, say };
})();
