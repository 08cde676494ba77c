/*! Mosaic snippet: personalized placements, events and consent for any page. No dependencies.
 *
 *   <script src="/static/mosaic/mosaic.js" data-mosaic-endpoint="/api/v1"
 *           data-mosaic-key="pk_..." data-mosaic-timeout="800" async></script>
 *   <div data-mosaic-placement="hero">default markup, shown if anything goes wrong</div>
 *
 * One POST /decide for every placement on the page; each placement's html is swapped in.
 * Placements are hidden (visibility only) until the answer arrives, and shown with their default
 * markup after the timeout or on any error. Placements already decided by the server (they carry
 * data-mosaic-reason, e.g. from the {% mosaic_placement %} template tag) are not hidden or re-asked.
 *
 * API: mosaic.track(type, name, properties, value), mosaic.consent({analytics, personalization,
 * marketing}), mosaic.visitor(), mosaic.decide(). DOM events on document: "mosaic:decided"
 * (detail: the decide answer) and "mosaic:error" (detail: {stage, error}).
 */
(function (window, document) {
  "use strict";
  if (window.mosaic && window.mosaic.version) return; // loaded twice: keep the first

  var SELECTOR = "[data-mosaic-placement]";
  var VISITOR_COOKIE = "mosaic_vid";
  var CONSENT_COOKIE = "mosaic_consent";
  var ONE_YEAR = 365 * 24 * 3600;
  var KEY_HEADER = "X-Mosaic-Key";

  var script = document.currentScript || document.querySelector("script[data-mosaic-endpoint]");
  var config = (script && script.dataset) || {};
  var endpoint = (config.mosaicEndpoint || "/api/v1").replace(/\/+$/, "");
  var apiKey = config.mosaicKey || "";
  var timeout = parseInt(config.mosaicTimeout, 10);
  if (!(timeout >= 0)) timeout = 800;

  // ---- anti-flicker: hide undecided placements only, until decided or timed out ------------
  var style = document.createElement("style");
  style.setAttribute("data-mosaic", "anti-flicker");
  style.textContent = SELECTOR + ":not([data-mosaic-reason]){visibility:hidden}";
  (document.head || document.documentElement).appendChild(style);

  function reveal() {
    if (style.parentNode) style.parentNode.removeChild(style);
  }

  // ---- cookies, ids --------------------------------------------------------------------------
  function getCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) {
        try { return decodeURIComponent(parts[i].slice(eq + 1)); } catch (e) { return null; }
      }
    }
    return null;
  }

  function setCookie(name, value) {
    var secure = window.location.protocol === "https:" ? "; Secure" : "";
    document.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + ONE_YEAR +
      "; Path=/; SameSite=Lax" + secure;
  }

  function uuid() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID(); // secure contexts only
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    var h = "";
    for (var j = 0; j < 16; j++) {
      h += (b[j] + 0x100).toString(16).slice(1);
      if (j === 3 || j === 5 || j === 7 || j === 9) h += "-";
    }
    return h;
  }

  var visitorId = getCookie(VISITOR_COOKIE);
  if (!visitorId) visitorId = uuid();
  setCookie(VISITOR_COOKIE, visitorId); // (re)set: the year runs from the last visit

  function gpc() {
    return window.navigator.globalPrivacyControl === true;
  }

  function storedConsent() {
    try { return JSON.parse(getCookie(CONSENT_COOKIE) || "null") || {}; } catch (e) { return {}; }
  }

  function analyticsRefused() {
    return storedConsent().analytics === false;
  }

  // ---- transport -------------------------------------------------------------------------------
  function post(path, body, signal) {
    var headers = { "Content-Type": "application/json" };
    if (apiKey) headers[KEY_HEADER] = apiKey;
    // No cookies: the visitor travels in the body, and a logged-in admin session must not turn
    // these calls into CSRF-checked ones.
    return window.fetch(endpoint + path, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(body),
      credentials: "omit",
      keepalive: path === "/events",
      signal: signal
    }).then(function (response) {
      if (!response.ok) throw new Error(path + " answered HTTP " + response.status);
      return response.json();
    });
  }

  function emit(name, detail) {
    var event;
    try { event = new CustomEvent(name, { detail: detail }); } catch (e) {
      event = document.createEvent("CustomEvent"); // very old browsers
      event.initCustomEvent(name, false, false, detail);
    }
    document.dispatchEvent(event);
  }

  function pageContext() {
    return {
      url: window.location.href,
      referrer: document.referrer,
      locale: window.navigator.language || ""
    };
  }

  // ---- decide ----------------------------------------------------------------------------------
  // Placements not yet decided (all of them when `refresh`), grouped by key.
  function placements(refresh) {
    var byKey = {};
    var nodes = document.querySelectorAll(SELECTOR);
    for (var i = 0; i < nodes.length; i++) {
      var key = nodes[i].getAttribute("data-mosaic-placement");
      if (!key || (!refresh && nodes[i].hasAttribute("data-mosaic-reason"))) continue;
      (byKey[key] = byKey[key] || []).push(nodes[i]);
    }
    return byKey;
  }

  function apply(byKey, answer) {
    var decided = (answer && answer.placements) || {};
    Object.keys(byKey).forEach(function (key) {
      var decision = decided[key];
      if (!decision) return;
      byKey[key].forEach(function (node) {
        // An empty html (fallback:…) keeps the page's own default markup.
        if (decision.html) node.innerHTML = decision.html;
        node.setAttribute("data-mosaic-variant", decision.variant || "");
        node.setAttribute("data-mosaic-reason", decision.reason || "");
      });
    });
  }

  // Ask for the page's placements and swap them in. The first call (on load) only shows the
  // answer if it beats the timeout; later calls (refresh) replace content whenever it arrives.
  function decide(options) {
    var refresh = !options || options.refresh !== false;
    var byKey = placements(refresh);
    var keys = Object.keys(byKey);
    if (!keys.length) {
      reveal();
      return Promise.resolve(null);
    }
    var late = false;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = refresh ? null : window.setTimeout(function () {
      late = true;
      reveal();
      if (controller) controller.abort();
    }, timeout);
    var body = { placements: keys, visitor: visitorId, context: pageContext() };
    return post("/decide", body, controller && !refresh ? controller.signal : undefined)
      .then(function (answer) {
        if (late) throw new Error("decide timed out after " + timeout + " ms");
        window.clearTimeout(timer);
        apply(byKey, answer);
        reveal();
        emit("mosaic:decided", answer);
        return answer;
      })
      .catch(function (error) {
        window.clearTimeout(timer);
        reveal(); // the default markup stays
        emit("mosaic:error", { stage: "decide", error: late ? "timeout" : String(error) });
        return null;
      });
  }

  // ---- events and consent ----------------------------------------------------------------------
  function track(type, name, properties, value) {
    if (analyticsRefused()) return Promise.resolve(null);
    var event = {
      event_id: uuid(),
      visitor: visitorId,
      type: type,
      name: name || "",
      properties: properties || {},
      occurred_at: new Date().toISOString(),
      context: pageContext()
    };
    if (value !== undefined && value !== null) event.value = value;
    return post("/events", { events: [event] }).catch(function (error) {
      emit("mosaic:error", { stage: "events", error: String(error) });
      return null;
    });
  }

  function consent(choices) {
    choices = choices || {};
    var purposes = {
      analytics: !!choices.analytics,
      personalization: !!choices.personalization,
      marketing: !!choices.marketing && !gpc() // Global Privacy Control: never marketing
    };
    setCookie(CONSENT_COOKIE, JSON.stringify(purposes));
    return post("/consent", { visitor: visitorId, purposes: purposes, source: "snippet" })
      .catch(function (error) {
        emit("mosaic:error", { stage: "consent", error: String(error) });
      })
      .then(function () {
        return decide();
      });
  }

  var started;
  window.mosaic = {
    version: "1",
    track: track,
    consent: consent,
    decide: decide,
    visitor: function () { return visitorId; },
    // Resolves with the first decide answer (null on timeout or error).
    ready: new Promise(function (resolve) { started = resolve; })
  };

  function start() {
    started(decide({ refresh: false }));
    track("page_view", document.title.slice(0, 200));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window, document);
