// The approvals inbox: sign in with the stage's OIDC issuer (authorization code + PKCE S256),
// then list, show and answer the caller's approvals through the gateway's API.
// The token lives in this tab's sessionStorage only; the code leaves the address bar at once.
// Everything shown is written with textContent: nothing from the API is parsed as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "sfn-gateway.inbox.token";
  const SIGN_IN_KEY = "sfn-gateway.inbox.sign-in";
  const PAGE_SIZE = 25;
  // Tokens are dropped this long before they expire, so a request never goes out with a dying one.
  const EXPIRY_MARGIN_MS = 30000;
  // The gateway's limit on a comment (ANSWER_APPROVAL_BODY in chalicelib/validation.py).
  const COMMENT_MAX_LENGTH = 2000;

  const main = document.getElementById("inbox");
  const settings = {
    issuer: main.dataset.issuer.replace(/\/$/, ""),
    clientId: main.dataset.clientId,
    scopes: main.dataset.scopes,
    token: main.dataset.token,
  };
  // The page's own address (no query) is the redirect URI registered with the issuer.
  const redirectUri = window.location.origin + window.location.pathname;
  const $ = (id) => document.getElementById(id);
  let nextToken = null;
  let shown = 0;

  function element(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    return node;
  }

  function say(text) {
    // Cleared first so that the same words twice ("Approved", "Approved") are announced twice.
    $("status").textContent = "";
    window.setTimeout(() => { $("status").textContent = text; }, 50);
  }

  function problem(text) {
    $("problem").textContent = text || "";
  }

  function reason(body, status) {
    // The gateway's messages end with a full stop already.
    const message = (body && body.Message) || "error " + status;
    return /[.!?]$/.test(message) ? message : message + ".";
  }

  // --- PKCE and sign-in -------------------------------------------------------------------------

  function base64url(bytes) {
    let text = "";
    for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
    return window.btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomText(size) {
    return base64url(window.crypto.getRandomValues(new Uint8Array(size)));
  }

  async function s256(verifier) {
    return base64url(await window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  }

  async function discovery() {
    const url = settings.issuer + "/.well-known/openid-configuration";
    let response;
    try {
      response = await fetch(url, { credentials: "omit" });
    } catch (err) {
      throw new Error("The sign-in service " + settings.issuer + " cannot be reached.");
    }
    if (!response.ok) throw new Error("The sign-in service answered " + response.status + " for " + url + ".");
    const document_ = await response.json();
    if (!document_.authorization_endpoint || !document_.token_endpoint) {
      throw new Error("The sign-in service's discovery document names no authorization or token endpoint.");
    }
    return document_;
  }

  async function signIn(loginHint) {
    problem("");
    const endpoints = await discovery();
    const request = { verifier: randomText(48), state: randomText(24), nonce: randomText(24),
                      tokenEndpoint: endpoints.token_endpoint };
    window.sessionStorage.setItem(SIGN_IN_KEY, JSON.stringify(request));
    const query = new URLSearchParams({
      response_type: "code",
      client_id: settings.clientId,
      redirect_uri: redirectUri,
      scope: settings.scopes,
      state: request.state,
      nonce: request.nonce,
      code_challenge: await s256(request.verifier),
      code_challenge_method: "S256",
    });
    if (loginHint) query.set("login_hint", loginHint);
    window.location.assign(endpoints.authorization_endpoint + "?" + query.toString());
  }

  async function finishSignIn(returned) {
    const request = JSON.parse(window.sessionStorage.getItem(SIGN_IN_KEY) || "null");
    window.sessionStorage.removeItem(SIGN_IN_KEY);
    if (returned.get("error")) {
      throw new Error("Sign-in failed: " + (returned.get("error_description") || returned.get("error")));
    }
    if (!request || returned.get("state") !== request.state) {
      throw new Error("This sign-in answer does not belong to a sign-in started here; sign in again.");
    }
    let response;
    try {
      response = await fetch(request.tokenEndpoint, {
        method: "POST",
        credentials: "omit",
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code: returned.get("code"),
          redirect_uri: redirectUri,
          client_id: settings.clientId,
          code_verifier: request.verifier,
        }),
      });
    } catch (err) {
      throw new Error("The token endpoint " + request.tokenEndpoint + " cannot be reached (is its origin in "
                      + "the page's Content-Security-Policy? See INBOX_AUTH_ORIGIN).");
    }
    const tokens = await response.json().catch(() => ({}));
    if (!response.ok || !tokens[settings.token]) {
      throw new Error("Sign-in failed: " + (tokens.error_description || tokens.error || "no " + settings.token));
    }
    const lifetime = Number(tokens.expires_in) || 3600;
    window.sessionStorage.setItem(TOKEN_KEY, JSON.stringify({
      token: tokens[settings.token], expiresAt: Date.now() + lifetime * 1000 - EXPIRY_MARGIN_MS,
    }));
  }

  function currentToken() {
    const saved = JSON.parse(window.sessionStorage.getItem(TOKEN_KEY) || "null");
    if (!saved || Date.now() > saved.expiresAt) {
      window.sessionStorage.removeItem(TOKEN_KEY);
      return null;
    }
    return saved.token;
  }

  function accountName(token) {
    // For the greeting only: the gateway verifies the token, the page just reads who it names.
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const bytes = Uint8Array.from(window.atob(payload), (character) => character.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return claims["cognito:username"] || claims.preferred_username || claims.email || claims.sub || "";
    } catch (err) {
      return "";
    }
  }

  function showSignedOut(message) {
    window.sessionStorage.removeItem(TOKEN_KEY);
    $("account").hidden = true;
    $("signed-in").hidden = true;
    $("signed-out").hidden = false;
    if (message) problem(message);
  }

  // --- the API ----------------------------------------------------------------------------------

  class SignedOut extends Error {}

  async function api(method, path, body) {
    const token = currentToken();
    if (!token) throw new SignedOut("Your sign-in has expired; sign in again.");
    const options = { method, headers: { Authorization: "Bearer " + token }, credentials: "omit" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    // Relative: the API is under the same stage path as this page.
    const response = await fetch(path, options);
    if (response.status === 401) throw new SignedOut("Your sign-in has expired; sign in again.");
    const answer = await response.json().catch(() => ({}));
    return { status: response.status, body: answer };
  }

  function approvalPath(id) {
    return "approvals/" + encodeURIComponent(id);
  }

  // --- the list ---------------------------------------------------------------------------------

  function age(createdAt) {
    const seconds = Math.max(0, (Date.now() - Date.parse(createdAt)) / 1000);
    if (seconds < 60) return Math.floor(seconds) + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h";
    return Math.floor(seconds / 86400) + " d";
  }

  function updateCount() {
    const count = $("approvals").children.length;
    $("count").textContent = count === 1 ? "1 approval" : count + " approvals";
    $("empty").hidden = count > 0;
  }

  function renderApproval(approval) {
    shown += 1;
    const key = "approval-" + shown;
    const item = element("li", null, { "data-approval-id": approval.id, "aria-labelledby": key + "-title" });
    item.append(element("h3", approval.title || "(untitled)", { id: key + "-title", tabindex: "-1" }));
    const facts = element("dl");
    const created = element("time", age(approval.createdAt), { datetime: approval.createdAt,
                                                               title: approval.createdAt });
    const ageValue = element("dd");
    ageValue.append(created);
    facts.append(element("dt", "Machine"), element("dd", approval.stateMachine || ""), element("dt", "Age"), ageValue);
    if (approval.expiresAt) {
      facts.append(element("dt", "Expires"), element("dd", new Date(approval.expiresAt).toLocaleString()));
    }
    item.append(facts);
    const details = element("section", null, { "aria-labelledby": key + "-details" });
    details.append(element("h4", "Details", { id: key + "-details" }));
    const detailsText = element("pre", "Loading…");
    details.append(detailsText);
    item.append(details);
    item.append(element("label", "Comment", { for: key + "-comment" }));
    const comment = element("textarea", null, { id: key + "-comment", rows: "2",
                                                   maxlength: String(COMMENT_MAX_LENGTH) });
    item.append(comment);
    const buttons = element("p", null, { class: "answers" });
    const approve = element("button", "Approve", { type: "button", "aria-describedby": key + "-title" });
    const reject = element("button", "Reject", { type: "button", "aria-describedby": key + "-title" });
    approve.addEventListener("click", () => answer(item, approval, "approve", comment, [approve, reject]));
    reject.addEventListener("click", () => answer(item, approval, "reject", comment, [approve, reject]));
    buttons.append(approve, " ", reject);
    item.append(buttons);
    loadDetails(item, approval, detailsText);
    return item;
  }

  async function loadDetails(item, approval, target) {
    try {
      const { status, body } = await api("GET", approvalPath(approval.id));
      if (status === 200) {
        target.textContent = JSON.stringify(body.details, null, 2);
      } else if (status === 404 || status === 410) {
        removeItem(item);
      } else {
        target.textContent = "Details could not be loaded: " + reason(body, status);
      }
    } catch (err) {
      handleFailure(err);
    }
  }

  function removeItem(item, hadFocus) {
    // Focus goes to the next approval (or the list's heading), never lost with the removed item.
    const next = item.nextElementSibling || item.previousElementSibling;
    hadFocus = hadFocus || item.contains(document.activeElement);
    item.remove();
    updateCount();
    if (hadFocus) (next ? next.querySelector("h3") : $("pending-heading")).focus();
  }

  async function answer(item, approval, decision, comment, buttons) {
    problem("");
    // Disabled buttons drop focus: remember whether it was here, to hand it on afterwards.
    const hadFocus = item.contains(document.activeElement);
    buttons.forEach((button) => { button.disabled = true; });
    const body = comment.value.trim() ? { comment: comment.value.trim() } : {};
    try {
      const { status, body: answered } = await api("POST", approvalPath(approval.id) + "/" + decision, body);
      if (status === 200) {
        removeItem(item, hadFocus);
        say(decision === "approve" ? "Approved" : "Rejected");
        return;
      }
      if (status === 404 || status === 409 || status === 410) {
        removeItem(item, hadFocus);
      } else {
        buttons.forEach((button) => { button.disabled = false; });
        if (hadFocus) item.querySelector("textarea").focus();
      }
      problem("“" + (approval.title || approval.id) + "” was not answered: " + reason(answered, status));
    } catch (err) {
      buttons.forEach((button) => { button.disabled = false; });
      handleFailure(err);
    }
  }

  async function loadPage(append) {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (append && nextToken) query.set("nextToken", nextToken);
    const { status, body } = await api("GET", "approvals?" + query.toString());
    if (status !== 200) {
      problem("The approvals could not be listed: " + reason(body, status));
      return;
    }
    if (!append) $("approvals").replaceChildren();
    for (const approval of body.approvals || []) $("approvals").append(renderApproval(approval));
    nextToken = body.nextToken || null;
    $("more").hidden = !nextToken;
    updateCount();
  }

  function handleFailure(err) {
    if (err instanceof SignedOut) {
      showSignedOut(err.message);
    } else {
      problem(err.message || String(err));
    }
  }

  async function showSignedIn(token) {
    $("signed-out").hidden = true;
    $("account-name").textContent = accountName(token);
    $("account").hidden = false;
    $("signed-in").hidden = false;
    await loadPage(false);
  }

  async function start() {
    $("needs-script").hidden = true;
    const returned = new URLSearchParams(window.location.search);
    // The code (or error) must not stay in the address bar, the history or a bookmark.
    if (window.location.search) window.history.replaceState(null, "", window.location.pathname);
    $("sign-in").addEventListener("click", () => signIn(returned.get("login_hint")).catch(handleFailure));
    $("sign-out").addEventListener("click", () => { showSignedOut(); say("Signed out"); });
    $("refresh").addEventListener("click", () => { problem(""); loadPage(false).catch(handleFailure); });
    $("more").addEventListener("click", () => loadPage(true).catch(handleFailure));
    try {
      if (returned.has("code") || returned.has("error")) await finishSignIn(returned);
      const token = currentToken();
      if (token) {
        await showSignedIn(token);
      } else if (returned.get("login_hint")) {
        await signIn(returned.get("login_hint"));
      } else {
        showSignedOut();
      }
    } catch (err) {
      showSignedOut();
      handleFailure(err);
    }
  }

  start();
})();
