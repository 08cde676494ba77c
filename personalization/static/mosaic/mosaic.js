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
 * Recommendations: a placement answered with data.recommendations gets data-mosaic-recs* and is
 * reported as a "recommendation_impression" custom event once it is at least half visible
 * (once per page for the same model version, placement and items), and a click on one of its
 * items (data-sku) as a "recommendation_click"; both carry the model version (run), source and
 * placement, and follow the events' consent rules (nothing is sent when analytics is refused).
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
        markRecs(node, key, decision.html && decision.data && decision.data.recommendations);
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
        watchRecs();
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

  // ---- recommendation impressions and clicks --------------------------------------------------
  // The admin's click-through rate per model version is clicks / impressions of these events.
  // Impressions come from the page, not from decide: an answer may arrive too late to be shown,
  // a block may never scroll into view, and decide must not write per decision.
  var RECS_SELECTOR = "[data-mosaic-recs]";
  var MAX_RECS_ITEMS = 20;
  var reportedRecs = {};
  var recsObserver = null;

  // A recommendations block's model version, source and placement go on its placement element
  // (from the answer's data.recommendations; the template tag writes the same attributes), so any
  // template works as long as its items carry data-sku.
  function markRecs(node, key, recs) {
    var names = ["data-mosaic-recs", "data-mosaic-recs-run", "data-mosaic-recs-source"];
    if (!recs) {
      names.forEach(function (name) { node.removeAttribute(name); });
      return;
    }
    node.setAttribute(names[0], key);
    node.setAttribute(names[1], recs.run == null ? "" : String(recs.run));
    node.setAttribute(names[2], recs.source || "");
    node.mosaicRecsWatched = false; // new content: watched (and reported) afresh
  }

  function recsInfo(block) {
    return {
      run: parseInt(block.getAttribute("data-mosaic-recs-run"), 10),
      source: (block.getAttribute("data-mosaic-recs-source") || "").slice(0, 200),
      placement: (block.getAttribute("data-mosaic-recs") || "").slice(0, 200)
    };
  }

  function recsImpression(block) {
    var info = recsInfo(block);
    if (!(info.run > 0)) return; // no trained model behind the block: nothing to attribute
    var nodes = block.querySelectorAll("[data-sku]");
    var skus = [];
    for (var i = 0; i < nodes.length && skus.length < MAX_RECS_ITEMS; i++) {
      skus.push((nodes[i].getAttribute("data-sku") || "").slice(0, 64));
    }
    if (!skus.length) return;
    // The same list in the same placement counts once per page (a re-decide that renders the
    // same items again, e.g. after a consent choice, is not a second impression).
    var seen = info.run + "|" + info.placement + "|" + skus.join(",");
    if (reportedRecs[seen]) return;
    reportedRecs[seen] = true;
    info.skus = skus;
    track("custom", "recommendation_impression", info);
  }

  function watchRecs() {
    var blocks = document.querySelectorAll(RECS_SELECTOR);
    for (var i = 0; i < blocks.length; i++) {
      var block = blocks[i];
      if (block.mosaicRecsWatched) continue;
      block.mosaicRecsWatched = true;
      if (typeof window.IntersectionObserver !== "function") {
        recsImpression(block); // no way to tell what is visible: rendered counts as shown
        continue;
      }
      if (!recsObserver) {
        recsObserver = new window.IntersectionObserver(function (entries) {
          entries.forEach(function (entry) {
            if (!entry.isIntersecting) return;
            recsObserver.unobserve(entry.target);
            recsImpression(entry.target);
          });
        }, { threshold: 0.5 });
      }
      recsObserver.observe(block);
    }
  }

  function recsClick(event) {
    var target = event.target;
    var item = target && target.closest ? target.closest("[data-sku]") : null;
    var block = item ? item.closest(RECS_SELECTOR) : null;
    if (!block) return;
    var info = recsInfo(block);
    if (!(info.run > 0)) return;
    info.sku = (item.getAttribute("data-sku") || "").slice(0, 64);
    // keepalive (see post): sent even when the click navigates away
    track("custom", "recommendation_click", info);
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
    // capture: a page handler that stops the click's propagation does not hide it
    document.addEventListener("click", recsClick, true);
    watchRecs(); // blocks the server already rendered (the template tag)
    started(decide({ refresh: false }));
    track("page_view", document.title.slice(0, 200));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window, document);
