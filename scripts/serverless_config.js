#!/usr/bin/env node
/*
 * Prints, as JSON, the Serverless application in a folder exactly as the pinned Tencent components
 * CLI (@serverless/components, see package.json) would hand it to the deployment engine on
 * `components deploy`, without deploying anything and without network or credentials.
 *
 *   node scripts/serverless_config.js [FOLDER]      (default: functions/, where `npm run deploy` runs)
 *
 * It calls the CLI's own code from node_modules, in the order of commands-cn/run.js and runAll.js:
 *   runningTemplate + checkTemplateAppAndStage   is FOLDER an application of several instances?
 *   getTemplate                                  scans FOLDER's subfolders, reads each serverless.yml
 *                                                (loadInstanceConfig: app/stage/org from ../serverless.yml),
 *                                                resolves ${env:NAME} (resolveVariables) and src paths
 *   getAllComponents                             the per-instance records sent to the engine
 * The variables are read from this process's environment only: the CLI's own .env loading lives in
 * its entry point, which this script does not run, so a developer's .env cannot leak into a test.
 *
 * Two things the CLI would fetch are replaced, and the output says so:
 *   - the org (Tencent APPID) of an instance without `org:` comes from the platform (getOrgId):
 *     here it is OFFLINE_ORG;
 *   - ${name} ${stage} ${app} ${org} are left in place by the CLI and resolved by the engine
 *     ("配置变量": the instance's own top-level values); "engine_inputs" shows that substitution.
 * Any network use throws, so a CLI change that starts fetching during config loading fails loudly.
 */
'use strict';

const path = require('path');
const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');

const OFFLINE_ORG = 'offline-org';

function refuseNetwork(what) {
  return () => {
    throw new Error(`serverless_config.js is offline: the CLI tried ${what}`);
  };
}
for (const [name, mod, fns] of [
  ['http', http, ['request', 'get']],
  ['https', https, ['request', 'get']],
  ['net', net, ['connect', 'createConnection']],
  ['tls', tls, ['connect']],
]) {
  for (const fn of fns) mod[fn] = refuseNetwork(`${name}.${fn}`);
}

const ROOT = path.resolve(__dirname, '..');
const CLI_PACKAGE = '@serverless/components';

function main() {
  const folder = path.resolve(process.argv[2] || path.join(ROOT, 'functions'));
  const cliRoot = path.dirname(require.resolve(`${CLI_PACKAGE}/package.json`, { paths: [ROOT] }));
  const cliVersion = require(path.join(cliRoot, 'package.json')).version;

  // The org lookup is the only platform call on this path (commands-cn/utils.js getDefaultOrgName).
  const platform = require(require.resolve('@serverless/platform-client-china', { paths: [cliRoot] }));
  let orgLookups = 0;
  platform.utils.getOrgId = async () => {
    orgLookups += 1;
    return OFFLINE_ORG;
  };

  const cliUtils = require(path.join(cliRoot, 'src/cli/utils.js'));
  const cnUtils = require(path.join(cliRoot, 'src/cli/commands-cn/utils.js'));

  process.chdir(folder); // the CLI works on process.cwd(), as `cd functions && components deploy` does
  const report = { cli: { package: CLI_PACKAGE, version: cliVersion }, folder, offline_org: OFFLINE_ORG };

  // commands-cn/run.js: `if (!config.target && runningTemplate(dir) && checkTemplateAppAndStage(dir)) runAll()`
  const multi = cliUtils.runningTemplate(folder) && cliUtils.checkTemplateAppAndStage(folder);
  if (!multi) {
    report.mode = 'single';
    // The single-instance path starts with checkBasicConfigValidation(cwd): report its verdict.
    return cnUtils
      .checkBasicConfigValidation(folder)
      .then(() => ({ ...report, error: null }))
      .catch((error) => ({ ...report, error: error.message }));
  }

  report.mode = 'multi';
  return cnUtils.getTemplate(folder).then((template) => {
    const components = cliUtils.getAllComponents(template); // runAll.js: what sdk.deploy() receives
    report.template = { name: template.name, org: template.org, app: template.app, stage: template.stage };
    report.org_from_platform = orgLookups > 0;
    report.instances = {};
    for (const [key, component] of Object.entries(components)) {
      report.instances[key] = {
        ...component,
        undefined_paths: undefinedPaths(component.inputs),
        engine_inputs: engineResolve(component.inputs, component),
      };
    }
    return report;
  });
}

// Paths whose ${env:NAME} had no value: JSON drops them, so the engine never sees the key.
function undefinedPaths(value, prefix = 'inputs') {
  if (value === undefined) return [prefix];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => undefinedPaths(v, `${prefix}.${k}`));
}

// The engine's substitution of the instance's own top-level values (Tencent's docs/guides/variables.md).
function engineResolve(value, instance) {
  if (typeof value === 'string') {
    return value.replace(/\$\{(name|stage|app|org)\}/g, (whole, key) =>
      instance[key] === undefined || instance[key] === null ? whole : String(instance[key])
    );
  }
  if (Array.isArray(value)) return value.map((item) => engineResolve(item, instance));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, engineResolve(v, instance)]));
  }
  return value;
}

Promise.resolve()
  .then(main)
  .then((report) => {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  })
  .catch((error) => {
    process.stderr.write(`serverless_config.js: ${error && error.stack ? error.stack : error}\n`);
    process.exitCode = 1;
  });
