// The live view: listens to /api/events (server-sent events) and redraws the job lists.
// Every value is put in with textContent, never as HTML: job data is user data.
(function () {
  "use strict";
  var script = document.currentScript;
  var jobId = script && script.dataset.job;
  var url = "/api/events" + (jobId ? "?job=" + encodeURIComponent(jobId) : "");
  var source = new EventSource(url);
  var state = document.getElementById("live-state");

  function cell(row, text, href) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function fill(bodyId, jobs) {
    var body = document.getElementById(bodyId);
    if (!body) { return; }
    body.replaceChildren();
    jobs.forEach(function (job) {
      var row = document.createElement("tr");
      row.dataset.job = job.job_id;
      row.dataset.status = job.status;
      cell(row, job.job_id, "/jobs/" + encodeURIComponent(job.job_id));
      cell(row, job.flow_id);
      var status = document.createElement("span");
      status.className = "status " + job.status;
      status.textContent = job.status;
      cell(row, "").appendChild(status);
      cell(row, String(job.activations));
      body.appendChild(row);
    });
  }

  source.addEventListener("open", function () {
    if (state) { state.textContent = "connected"; }
  });
  source.addEventListener("error", function () {
    if (state) { state.textContent = "reconnecting…"; }
  });
  source.addEventListener("jobs", function (event) {
    var snapshot = JSON.parse(event.data);
    Object.keys(snapshot.counts).forEach(function (status) {
      var count = document.getElementById("count-" + status);
      if (count) { count.textContent = String(snapshot.counts[status]); }
    });
    fill("running-jobs", snapshot.running);
    fill("newest-jobs", snapshot.newest);
    if (snapshot.job) {
      var status = document.getElementById("job-status");
      if (status && status.textContent !== snapshot.job.status) {
        // The job ended or changed: load the page again for its final graph and timeline.
        window.location.reload();
        return;
      }
      var activations = document.getElementById("job-activations");
      if (activations) { activations.textContent = String(snapshot.job.activations); }
    }
    if (state) { state.textContent = "connected · updated " + new Date().toLocaleTimeString(); }
  });
})();
