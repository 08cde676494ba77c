/* Audience builder: edits a condition's JSON (the textarea it sits around) with attribute,
   operator and value pickers and nested AND / OR / NOR groups, each of which may be negated
   (NOT). The JSON stays the source of truth: editing it by hand redraws the builder; a
   condition the builder cannot show (an operator it has no picker for) is left to the JSON.
   After each change the server describes the condition in words, lists its problems and, for
   segments, counts the stored profiles it matches. */
(function () {
  "use strict";

  var OPS = [
    ["$eq", "is"], ["$ne", "is not"], ["$gt", ">"], ["$gte", "≥"], ["$lt", "<"], ["$lte", "≤"],
    ["$in", "is one of"], ["$nin", "is none of"], ["$all", "has all of"],
    ["$exists", "exists"], ["$regex", "matches (RE2)"], ["$vgte", "version ≥"], ["$vlt", "version <"]
  ];
  var LIST_OPS = { $in: 1, $nin: 1, $all: 1 };
  var GROUP_OPS = [["$and", "ALL of"], ["$or", "ANY of"], ["$nor", "NONE of"]];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function Unsupported(message) { this.message = message; }

  /* --- JSON <-> tree ---------------------------------------------------------------------- */
  function isOperatorObject(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v) &&
      Object.keys(v).length > 0 && Object.keys(v).every(function (k) { return k[0] === "$"; });
  }

  function parseGroup(cond, op, negate) {
    if (cond === null || typeof cond !== "object" || Array.isArray(cond)) {
      throw new Unsupported("a condition must be an object");
    }
    var group = { kind: "group", op: op || "$and", negate: !!negate, items: [] };
    Object.keys(cond).forEach(function (key) {
      var value = cond[key];
      if (key === "$and" || key === "$or" || key === "$nor") {
        if (!Array.isArray(value)) throw new Unsupported(key + " needs a list");
        var sub = { kind: "group", op: key, negate: false, items: [] };
        value.forEach(function (c) {
          var parsed = parseGroup(c, "$and", false);
          if (parsed.items.length === 1 && !parsed.negate) sub.items.push(parsed.items[0]);
          else sub.items.push(parsed);
        });
        group.items.push(sub);
      } else if (key === "$not") {
        group.items.push(parseGroup(value, "$and", true));
      } else if (key[0] === "$") {
        throw new Unsupported("the builder has no picker for " + key);
      } else if (isOperatorObject(value)) {
        Object.keys(value).forEach(function (op) {
          if (!OPS.some(function (o) { return o[0] === op; })) {
            throw new Unsupported("the builder has no picker for " + op);
          }
          group.items.push({ kind: "rule", path: key, op: op, value: value[op] });
        });
      } else {
        group.items.push({ kind: "rule", path: key, op: "$eq", value: value });
      }
    });
    return group;
  }

  function ruleJSON(rule) {
    var o = {};
    if (rule.op === "$eq" && (rule.value === null || typeof rule.value !== "object")) {
      o[rule.path] = rule.value;
    } else {
      var operand = {};
      operand[rule.op] = rule.value;
      o[rule.path] = operand;
    }
    return o;
  }

  function groupJSON(group) {
    var parts = group.items.map(function (item) {
      return item.kind === "rule" ? ruleJSON(item) : groupJSON(item);
    });
    var out;
    if (group.op === "$and") {
      out = {};
      var merged = parts.every(function (p) {
        return Object.keys(p).every(function (k) {
          if (k in out) return false;
          out[k] = p[k];
          return true;
        });
      });
      if (!merged) out = { $and: parts };
    } else {
      out = {};
      out[group.op] = parts;
    }
    return group.negate ? { $not: out } : out;
  }

  /* --- values ------------------------------------------------------------------------------ */
  function typed(text, type) {
    text = text.trim();
    if (text[0] === "{") {  // an operand object such as {"$ago": "30m"} (relative instants)
      try { return JSON.parse(text); } catch (e) { return text; }
    }
    if (type === "number") { var n = Number(text); return text !== "" && !isNaN(n) ? n : text; }
    if (type === "boolean") return text === "true" ? true : text === "false" ? false : text;
    return text;
  }

  function valueText(value) {
    if (Array.isArray(value)) return value.join(", ");
    if (value !== null && typeof value === "object") return JSON.stringify(value);
    return value === undefined || value === null ? "" : String(value);
  }

  /* --- the builder ------------------------------------------------------------------------- */
  function Builder(root) {
    this.root = root;
    this.textarea = document.getElementById(root.dataset.target);
    this.tree = root.querySelector(".ab-tree");
    var catalogue = JSON.parse(document.getElementById(root.dataset.catalogue).textContent);
    this.attributes = catalogue.attributes;
    this.scope = root.dataset.scope;
    this.checkUrl = root.dataset.checkUrl;
    this.listId = root.dataset.target + "-paths";
    var list = el("datalist", { id: this.listId });
    this.attributes.forEach(function (a) {
      list.appendChild(el("option", { value: a.path.replace(/\.\*$/, "."), text: a.type + " · " + a.description }));
    });
    root.appendChild(list);
    var self = this;
    this.textarea.addEventListener("input", function () { self.fromJSON(); });
    this.fromJSON();
  }

  Builder.prototype.attribute = function (path) {
    for (var i = 0; i < this.attributes.length; i++) {
      var a = this.attributes[i];
      if (a.path === path || (a.path.slice(-2) === ".*" && path.indexOf(a.path.slice(0, -1)) === 0)) return a;
    }
    return null;
  };

  Builder.prototype.fromJSON = function () {
    var text = this.textarea.value.trim();
    var cond;
    try { cond = text ? JSON.parse(text) : {}; } catch (e) {
      this.showTree(null, "The JSON does not parse yet: fix it below (the check says where).");
      this.check(null);
      return;
    }
    try { this.group = parseGroup(cond, "$and", false); } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      this.showTree(null, "This condition is shown as JSON only: " + e.message + ".");
      this.check(cond);
      return;
    }
    this.showTree(this.group);
    this.check(cond);
  };

  Builder.prototype.changed = function () {
    var cond = groupJSON(this.group);
    this.textarea.value = JSON.stringify(cond, null, 2);
    this.showTree(this.group);
    this.check(cond);
  };

  Builder.prototype.showTree = function (group, message) {
    this.tree.textContent = "";
    if (!group) { this.tree.appendChild(el("p", { className: "ab-unsupported", text: message })); return; }
    this.tree.appendChild(this.groupNode(group, null));
  };

  Builder.prototype.groupNode = function (group, parent) {
    var self = this;
    var op = el("select", { "aria-label": "group operator", className: "ab-group-op" });
    GROUP_OPS.forEach(function (g) {
      var option = el("option", { value: g[0], text: g[1] });
      if (g[0] === group.op) option.selected = true;
      op.appendChild(option);
    });
    op.addEventListener("change", function () { group.op = op.value; self.changed(); });
    var not = el("input", { type: "checkbox", "aria-label": "NOT" });
    not.checked = group.negate;
    not.addEventListener("change", function () { group.negate = not.checked; self.changed(); });
    var addRule = el("button", { type: "button", className: "button ab-add-rule", text: "+ condition" });
    addRule.addEventListener("click", function () {
      group.items.push({ kind: "rule", path: "", op: "$eq", value: "" });
      self.showTree(self.group);
    });
    var addGroup = el("button", { type: "button", className: "button ab-add-group", text: "+ group" });
    addGroup.addEventListener("click", function () {
      group.items.push({ kind: "group", op: "$or", negate: false, items: [] });
      self.showTree(self.group);
    });
    var head = el("div", { className: "ab-group-head" }, [
      el("label", { text: "NOT " }, [not]), op, el("span", { text: "of these:" }), addRule, addGroup
    ]);
    if (parent) {
      var remove = el("button", { type: "button", className: "button", text: "remove group" });
      remove.addEventListener("click", function () {
        parent.items.splice(parent.items.indexOf(group), 1);
        self.changed();
      });
      head.appendChild(remove);
    }
    var node = el("div", { className: "ab-group" + (group.negate ? " ab-negated" : "") }, [head]);
    group.items.forEach(function (item) {
      node.appendChild(item.kind === "rule" ? self.ruleNode(item, group) : self.groupNode(item, group));
    });
    return node;
  };

  Builder.prototype.ruleNode = function (rule, group) {
    var self = this;
    var path = el("input", { type: "text", list: this.listId, className: "ab-path",
      "aria-label": "attribute", placeholder: "attribute, e.g. request.device" });
    path.value = rule.path;
    var op = el("select", { className: "ab-op", "aria-label": "operator" });
    OPS.forEach(function (o) {
      var option = el("option", { value: o[0], text: o[1] });
      if (o[0] === rule.op) option.selected = true;
      op.appendChild(option);
    });
    var value = el("input", { type: "text", className: "ab-value", "aria-label": "value" });
    var help = el("span", { className: "ab-help" });
    function describe() {
      var a = self.attribute(path.value);
      help.textContent = a ? a.type + " · " + a.description + " e.g. " + JSON.stringify(a.example)
        : path.value ? "not in the catalogue" : "";
      value.placeholder = LIST_OPS[op.value] ? "values, comma-separated" : op.value === "$exists" ? "true or false"
        : a && a.type === "date" ? 'ISO date, or {"$ago": "30m"}' : "value";
    }
    value.value = valueText(rule.value);
    function commit() {
      var a = self.attribute(path.value.trim());
      var type = op.value === "$exists" ? "boolean" : a ? a.type : "string";
      if (type === "list") type = "string";
      rule.path = path.value.trim();
      rule.op = op.value;
      rule.value = LIST_OPS[op.value]
        ? value.value.split(",").map(function (v) { return typed(v, type); }).filter(function (v) { return v !== ""; })
        : typed(value.value, type);
      describe();
      if (rule.path) self.changed();
    }
    path.addEventListener("change", commit);
    op.addEventListener("change", commit);
    value.addEventListener("change", commit);
    var remove = el("button", { type: "button", className: "button", text: "×", "aria-label": "remove condition" });
    remove.addEventListener("click", function () {
      group.items.splice(group.items.indexOf(rule), 1);
      self.changed();
    });
    describe();
    return el("div", { className: "ab-rule" }, [path, op, value, remove, help]);
  };

  Builder.prototype.check = function (cond) {
    var self = this;
    var words = this.root.querySelector(".ab-description");
    var problems = this.root.querySelector(".ab-problems");
    var count = this.root.querySelector(".ab-count");
    if (cond === null) { words.textContent = "…"; problems.textContent = ""; count.textContent = ""; return; }
    clearTimeout(this.timer);
    var sequence = (this.sequence = (this.sequence || 0) + 1);
    this.timer = setTimeout(function () {
      var token = document.querySelector("[name=csrfmiddlewaretoken]");
      fetch(self.checkUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.value : "" },
        body: JSON.stringify({ condition: cond, scope: self.scope })
      }).then(function (r) { return r.json(); }).then(function (answer) {
        if (sequence !== self.sequence) return; // an older check answering late
        words.textContent = answer.description || (answer.problems && answer.problems.length ? "—" : "everyone");
        problems.textContent = "";
        (answer.problems || []).forEach(function (p) {
          problems.appendChild(el("li", { className: "ab-error", text: p }));
        });
        (answer.findings || []).forEach(function (f) {
          problems.appendChild(el("li", { className: "ab-" + f.severity, text: f.path + ": " + f.message }));
        });
        var c = answer.count;
        count.textContent = c ? c.matched + " of " + c.total + " stored profiles match" +
          (c.evaluated < c.total ? " (first " + c.evaluated + " evaluated)" : "") : "";
      }).catch(function () { words.textContent = "(the check is unavailable)"; });
    }, 250);
  };

  function start() {
    document.querySelectorAll("[data-audience-builder]").forEach(function (root) {
      if (!root.builder) root.builder = new Builder(root);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
