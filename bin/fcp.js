#!/usr/bin/env node
// fcp: see bin/preamble.js for what happens before the tool loads (and why CommonJS).
require('./preamble.js').run('../dist/cli/fcp.js');
