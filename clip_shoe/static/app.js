// Search page: sends the form to /api/search and draws the results grid.
// Metadata is inserted with textContent only, so catalog text can never inject markup.
const PAGE_SIZE = 20;
const TITLE_FIELDS = ["text_vi", "text", "productDisplayName", "title"];
const HIDDEN_FIELDS = new Set(["photo", "product_id", "score", "vector_score", "keyword_score", "group", "split", "image"]);
let offset = 0;
let lastQuery = null;  // {form: FormData} or {similar: id}
let completed = 0;  // finished requests, shown as data-completed on #results so tests can wait for the next response

const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function loadFilters() {
  const response = await fetch("/api/info");
  const info = await response.json();
  $("status").textContent = `${info.count} products, model ${info.identity}`;
  for (const [field, values] of Object.entries(info.filters)) {
    const label = document.createElement("label");
    label.textContent = field + " ";
    const select = document.createElement("select");
    select.dataset.field = field;
    select.className = "filter";
    select.add(new Option("any", ""));
    for (const value of values) select.add(new Option(value, value));
    label.append(select);
    $("filters").append(label);
  }
}

function selectedFilters() {
  const filters = {};
  for (const select of document.querySelectorAll("select.filter")) {
    if (select.value) filters[select.dataset.field] = [select.value];
  }
  return JSON.stringify(filters);
}

function card(hit) {
  const element = document.createElement("article");
  element.className = "card";
  element.dataset.productId = hit.product_id;
  const image = document.createElement("img");
  image.src = hit.photo;
  image.alt = hit.text || `product ${hit.product_id}`;
  image.loading = "lazy";
  const title = document.createElement("div");
  title.className = "title";
  title.textContent = TITLE_FIELDS.map((f) => hit[f]).find((v) => v) || `product ${hit.product_id}`;
  const details = document.createElement("dl");
  const rows = [["score", hit.score.toFixed(3)], ["id", String(hit.product_id)]];
  for (const [key, value] of Object.entries(hit)) {
    if (!HIDDEN_FIELDS.has(key) && !TITLE_FIELDS.includes(key) && value !== null && value !== "") rows.push([key, String(value)]);
  }
  for (const [key, value] of rows) {
    const term = document.createElement("dt");
    term.textContent = key;
    const description = document.createElement("dd");
    description.textContent = value;
    details.append(term, description);
  }
  const similar = document.createElement("button");
  similar.type = "button";
  similar.className = "similar";
  similar.textContent = "More like this";
  similar.addEventListener("click", () => { offset = 0; lastQuery = {similar: hit.product_id}; run(); });
  element.append(image, title, details, similar);
  return element;
}

async function run() {
  showError("");
  let response;
  if (lastQuery.similar !== undefined) {
    const params = new URLSearchParams({similar: lastQuery.similar, k: PAGE_SIZE, offset, filters: selectedFilters()});
    response = await fetch(`/api/search?${params}`);
  } else {
    const form = new FormData();
    for (const [key, value] of lastQuery.form) form.append(key, value);
    form.append("filters", selectedFilters());
    form.append("k", PAGE_SIZE);
    form.append("offset", offset);
    response = await fetch("/api/search", {method: "POST", body: form});
  }
  const body = await response.json();
  $("results").dataset.completed = ++completed;
  if (!response.ok) {
    const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    showError(`Search rejected (${response.status}): ${detail}`);
    return;
  }
  $("results").replaceChildren(...body.results.map(card));
  $("status").textContent = `${body.results.length} results in ${body.took_ms} ms`;
  $("page-number").textContent = `page ${offset / PAGE_SIZE + 1}`;
  $("prev").disabled = offset === 0;
  $("next").disabled = body.results.length < PAGE_SIZE;
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData();
  const text = $("q").value.trim();
  const photo = $("photo").files[0];
  if (!text && !photo) { showError("Type a few words or choose a photo."); return; }
  if (text) form.append("q", text);
  if (photo) { form.append("image", photo); form.append("image_weight", $("weight").value); }
  offset = 0;
  lastQuery = {form};
  run();
});

$("photo").addEventListener("change", () => {
  const chosen = $("photo").files.length > 0;
  $("weight-label").hidden = !chosen;
  $("clear-photo").hidden = !chosen;
});
$("clear-photo").addEventListener("click", () => { $("photo").value = ""; $("photo").dispatchEvent(new Event("change")); });
$("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE_SIZE); run(); });
$("next").addEventListener("click", () => { offset += PAGE_SIZE; run(); });

loadFilters().catch((error) => showError(`Could not load the index description: ${error}`));
