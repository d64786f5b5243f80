// The main and post step of a stand-in action (localcloud/actions/stand_in.py): runs the stand-in's
// Python module on the runner's own Python, as a node action runs on the runner's own Node. The
// runner (localcloud/actions/runner.py) copies this file beside the action.yml and writes
// stand-in.json there: the interpreter, the repository root, the module, and the variables the
// runner gives actions only (GitHub's NodeScriptActionHandler: ACTIONS_RUNTIME_URL,
// ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN; run: steps never see them) with the local network's
// addresses.
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const standIn = require(path.join(__dirname, "stand-in.json"));
// -P: the job's working directory is not on sys.path; -s: no user site-packages.
const result = spawnSync(standIn.python, ["-P", "-s", "-m", standIn.module], {
  stdio: "inherit",
  env: { ...process.env, ...standIn.env, PYTHONPATH: standIn.root },
});
if (result.error) {
  throw result.error;
}
process.exitCode = result.status ?? 1;
