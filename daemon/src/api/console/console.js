// Kumo console: event templates, zip uploads, the live tail, graph refresh.
(function () {
  "use strict";
  var templates = document.getElementById("templates");
  var picker = document.getElementById("template");
  if (templates && picker) {
    var all = JSON.parse(templates.textContent);
    picker.addEventListener("change", function () {
      if (all[picker.value]) {
        document.getElementById("event").value = JSON.stringify(all[picker.value], null, 2);
      }
    });
  }
  var saved = document.getElementById("saved-events");
  var savedPicker = document.getElementById("saved");
  if (saved && savedPicker) {
    var events = JSON.parse(saved.textContent);
    savedPicker.addEventListener("change", function () {
      if (Object.prototype.hasOwnProperty.call(events, savedPicker.value)) {
        document.getElementById("event").value = events[savedPicker.value];
        document.getElementById("save-as").value = savedPicker.value;
      }
    });
  }
  // A chosen .zip travels base64-encoded in the form's zip_b64 field.
  document.querySelectorAll("form[data-zip-upload]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var input = form.querySelector("input[type=file]");
      if (!input || !input.files.length) { return; }
      event.preventDefault();
      var reader = new FileReader();
      reader.onload = function () {
        var url = String(reader.result);
        form.querySelector("input[name=zip_b64]").value = url.slice(url.indexOf(",") + 1);
        form.submit();
      };
      reader.readAsDataURL(input.files[0]);
    });
  });
  var tail = document.getElementById("tail");
  if (tail && window.EventSource) {
    var state = document.getElementById("tail-state");
    var source = new EventSource(tail.dataset.src);
    source.onopen = function () { state.textContent = "live"; tail.dataset.state = "live"; };
    source.onerror = function () { state.textContent = "reconnecting…"; };
    source.onmessage = function (message) {
      var record = JSON.parse(message.data);
      var line = document.createElement("div");
      line.className = "line";
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = record.time + " " + record.version + " " + record.request_id + " ";
      line.appendChild(meta);
      line.appendChild(document.createTextNode(record.text.replace(/\n$/, "")));
      tail.appendChild(line);
      tail.scrollTop = tail.scrollHeight;
    };
  }
  var charts = document.querySelector("[data-refresh]");
  if (charts) {
    setTimeout(function () { location.reload(); }, Number(charts.dataset.refresh) * 1000);
  }
})();
