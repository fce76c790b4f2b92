'use strict';
// Kumo's Node.js runtime client (docs/wire-formats.md §1, §14): loads the
// `_HANDLER` export from LAMBDA_TASK_ROOT (CommonJS or ES module), then
// loops over the Runtime API's /next, running the handler as AWS's Node
// runtime does: async handlers and callback handlers (a returned promise
// wins), `context.callbackWaitsForEmptyEventLoop`, error documents with
// `trace`, loader errors through /init/error, and `console.*` lines
// `<ISO time>\t<request id>\t<LEVEL>\t<message>`. No npm dependencies.
//
// Started as `node [heap flags] /var/runtime/kumo_runtime.cjs`; a
// pre-started one (KUMO_PREWARMED=1) first waits for its function's
// environment as JSON on stdin.

const fs = require('fs');
const http = require('http');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');

const RUNTIME_PATH = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');

// --- Runtime API client (HTTP/1.1 keep-alive) --------------------------------

class RuntimeApiClient {
  constructor(address) {
    const colon = address.lastIndexOf(':');
    this.hostname = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    this.port = Number(address.slice(colon + 1));
    // Idle kept-alive sockets are unref'd by the agent, so they never keep
    // the event loop (and `beforeExit`) from happening.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  /** Resolves to { status, headers, body } (body a string). */
  request(method, urlPath, body, headers) {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
      const allHeaders = Object.assign({}, headers || {});
      if (payload !== undefined) {
        allHeaders['Content-Type'] = allHeaders['Content-Type'] || 'application/json';
        allHeaders['Content-Length'] = payload.length;
      }
      const req = http.request(
        {
          hostname: this.hostname,
          port: this.port,
          path: RUNTIME_PATH + urlPath,
          method,
          headers: allHeaders,
          agent: this.agent,
        },
        (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** POSTs a JSON document; complains on stderr unless it was accepted. */
  async post(urlPath, bodyString, headers) {
    const answer = await this.request('POST', urlPath, bodyString, headers);
    if (answer.status !== 202 && answer.status !== 413) {
      process.stderr.write(
        `[kumo bootstrap] POST ${urlPath} answered ${answer.status}: ${answer.body}\n`,
      );
    }
  }
}

// --- console: Lambda's text format ---------------------------------------------

const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };

function writeLine(level, args) {
  const time = new Date().toISOString();
  const requestId = globalThis[REQUEST_ID_SYMBOL];
  // One record per line: embedded newlines become carriage returns, as in
  // AWS's runtime.
  const message = util.format(...args).replace(/\n/g, '\r');
  process.stdout.write(`${time}\t${requestId}\t${level}\t${message}\n`);
}

function patchConsole() {
  const threshold = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const logger = (level) =>
    LEVELS[level] >= threshold ? (...args) => writeLine(level, args) : () => {};
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = logger('INFO');
  console.log = console.info;
  console.warn = logger('WARN');
  console.error = logger('ERROR');
  console.fatal = logger('FATAL');
}

// --- Errors ----------------------------------------------------------------------

/** A Lambda error with a `Runtime.*` type. */
class RuntimeError extends Error {
  constructor(type, message, cause) {
    super(message);
    this.name = type;
    if (cause && typeof cause.stack === 'string') {
      this.stack = `${type}: ${message}\n${cause.stack}`;
    }
  }
}

function isErrorLike(value) {
  return (
    util.types.isNativeError(value) ||
    (value &&
      typeof value.name === 'string' &&
      typeof value.message === 'string' &&
      typeof value.stack === 'string')
  );
}

/** The error document Node runtimes post: errorType, errorMessage, trace. */
function errorDocument(error) {
  try {
    if (isErrorLike(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: typeof error.stack === 'string' ? error.stack.split('\n') : [],
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
      trace: [],
    };
  }
}

function logError(what, error) {
  let detail;
  try {
    detail = JSON.stringify(errorDocument(error));
  } catch (_) {
    detail = String(error);
  }
  console.error(`${what} \t${detail}`);
}

// --- Loading the handler -----------------------------------------------------------

function nearestPackageIsModule(dir) {
  for (let folder = dir; ; folder = path.dirname(folder)) {
    if (folder.endsWith('/node_modules')) {
      return false;
    }
    const manifest = path.join(folder, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, 'utf8')).type === 'module';
      } catch (e) {
        console.warn(`${manifest} cannot be read; it is ignored for ES module detection.`, e);
        return false;
      }
    }
    if (folder === path.dirname(folder)) {
      return false;
    }
  }
}

const importFile = (file) => import(pathToFileURL(file).href);

/** Requires a CommonJS file, importing it instead when Node says it is ESM. */
async function requireOrImport(file) {
  try {
    return require(file);
  } catch (e) {
    if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      return importFile(file);
    }
    throw e;
  }
}

/**
 * The module for `file` (a path without extension under the task root),
 * following Node's rules: `.js` is an ES module when the nearest
 * package.json says "type": "module", `.mjs` always, `.cjs` never; a name
 * that is no file is resolved as a package from the task root.
 */
async function loadModule(taskRoot, moduleRoot, name) {
  const base = path.resolve(taskRoot, moduleRoot, name);
  const exists = (p) => fs.existsSync(p) && fs.statSync(p).isFile();
  if (exists(base)) {
    return requireOrImport(base);
  }
  if (exists(base + '.js')) {
    return nearestPackageIsModule(path.dirname(base)) ? importFile(base + '.js') : requireOrImport(base + '.js');
  }
  if (exists(base + '.mjs')) {
    return importFile(base + '.mjs');
  }
  if (exists(base + '.cjs')) {
    return require(base + '.cjs');
  }
  return require(require.resolve(name, { paths: [path.resolve(taskRoot, moduleRoot), taskRoot] }));
}

const ESM_IN_COMMONJS = /Cannot use import statement outside a module|Unexpected token 'export'/;

async function loadHandler(taskRoot, handlerString) {
  if (handlerString.includes('..')) {
    throw new RuntimeError(
      'Runtime.MalformedHandlerName',
      `'${handlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const last = path.basename(handlerString);
  const moduleRoot = handlerString.slice(0, handlerString.length - last.length);
  const match = last.match(/^([^.]*)\.(.*)$/);
  if (!match || !match[1] || !match[2]) {
    throw new RuntimeError('Runtime.MalformedHandlerName', `Bad handler '${handlerString}': expected 'file.export'`);
  }
  const [, name, exportPath] = match;
  let loaded;
  try {
    loaded = await loadModule(taskRoot, moduleRoot, name);
  } catch (e) {
    if (e instanceof SyntaxError) {
      const hint = ESM_IN_COMMONJS.test(e.message)
        ? ' (this file is loaded as CommonJS: ES module syntax needs a .mjs file, or a .js file with "type": "module" in the nearest package.json)'
        : '';
      throw new RuntimeError('Runtime.UserCodeSyntaxError', `${e.name}: ${e.message}${hint}`, e);
    }
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new RuntimeError(
        'Runtime.ImportModuleError',
        `Error: Cannot find module '${moduleRoot}${name}' (looked for ${name}.js, ${name}.mjs and ${name}.cjs under ${path.resolve(taskRoot, moduleRoot)}): ${e.message.split('\n')[0]}`,
        e,
      );
    }
    throw e;
  }
  const handler = exportPath.split('.').reduce((value, key) => value && value[key], loaded);
  if (!handler) {
    throw new RuntimeError('Runtime.HandlerNotFound', `${handlerString} is undefined or not exported`);
  }
  if (typeof handler !== 'function') {
    throw new RuntimeError('Runtime.HandlerNotFound', `${handlerString} is not a function`);
  }
  return handler;
}

// --- Invocations ------------------------------------------------------------------

let beforeExitListener = () => {};
let errorSink = null; // (error, exitCode) => void, per phase

function parseJsonHeader(headers, name) {
  const raw = headers[name];
  if (raw === undefined || raw === '') {
    return undefined;
  }
  try {
    return JSON.parse(raw);
  } catch (_) {
    return undefined;
  }
}

function serialize(result) {
  try {
    return JSON.stringify(result === undefined ? null : result);
  } catch (e) {
    throw new RuntimeError('Runtime.MarshalError', `Unable to stringify response body: ${e.message}`, e);
  }
}

class Invocation {
  constructor(client, handler, headers, body, scheduleNext) {
    this.client = client;
    this.handler = handler;
    this.headers = headers;
    this.body = body;
    this.scheduleNext = scheduleNext;
    this.id = headers['lambda-runtime-aws-request-id'] || '';
    this.reported = false;
    this.waitForEmptyEventLoop = true;
  }

  /** Posts the outcome once; later outcomes are reported and ignored. */
  report(error, result) {
    if (this.reported) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    this.reported = true;
    beforeExitListener = () => {};
    const encodedId = encodeURIComponent(this.id);
    let posted;
    if (error === undefined || error === null) {
      let body;
      try {
        body = serialize(result);
      } catch (e) {
        this.reported = false;
        this.report(e);
        return;
      }
      posted = this.client.post(`/invocation/${encodedId}/response`, body);
    } else {
      logError('Invoke Error', error);
      const document = errorDocument(error);
      posted = this.client.post(`/invocation/${encodedId}/error`, JSON.stringify(document), {
        [ERROR_TYPE_HEADER]: document.errorType,
      });
    }
    posted.then(this.scheduleNext, fatal);
  }

  context() {
    const invocation = this;
    const deadline = Number(this.headers['lambda-runtime-deadline-ms']) || 0;
    let finished = false;
    const once = (f) => (...args) => {
      if (!finished) {
        finished = true;
        f(...args);
      }
    };
    const done = (err, result) => this.report(err, result);
    const env = process.env;
    return {
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      invokedFunctionArn: this.headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: this.id,
      clientContext: parseJsonHeader(this.headers, 'lambda-runtime-client-context'),
      identity: parseJsonHeader(this.headers, 'lambda-runtime-cognito-identity'),
      tenantId: this.headers['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis: () => deadline - Date.now(),
      get callbackWaitsForEmptyEventLoop() {
        return invocation.waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        invocation.waitForEmptyEventLoop = value;
      },
      done: once(done),
      succeed: once((result) => done(null, result)),
      fail: once((err) => done(err === undefined || err === null ? 'handled' : err)),
      callback: once((err, result) => {
        if (err !== undefined && err !== null) {
          done(err);
        } else if (!invocation.waitForEmptyEventLoop) {
          done(null, result);
        } else {
          // Lambda answers once the event loop has nothing left to do.
          beforeExitListener = () => setImmediate(() => done(null, result));
        }
      }),
    };
  }

  run() {
    globalThis[REQUEST_ID_SYMBOL] = this.id;
    const trace = this.headers['lambda-runtime-trace-id'];
    if (trace) {
      process.env._X_AMZN_TRACE_ID = trace;
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    errorSink = (error, exitCode) => {
      const document = errorDocument(error);
      this.reported = true;
      this.client
        .post(`/invocation/${encodeURIComponent(this.id)}/error`, JSON.stringify(document), {
          [ERROR_TYPE_HEADER]: document.errorType,
        })
        .finally(() => process.exit(exitCode));
    };
    const isAsync = this.handler.constructor && this.handler.constructor.name === 'AsyncFunction';
    // Nothing settled the invocation and nothing is left to run.
    beforeExitListener = () => {
      if (isAsync) {
        this.report(
          new RuntimeError(
            'Runtime.NodeJsExit',
            'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled.',
          ),
        );
      } else {
        this.report(null, null);
      }
    };
    let context;
    try {
      let event;
      try {
        event = JSON.parse(this.body);
      } catch (e) {
        throw new RuntimeError('Runtime.UnmarshalError', `Unable to unmarshal input: ${e.message}`, e);
      }
      const full = this.context();
      const { callback } = full;
      delete full.callback;
      context = full;
      const result = this.handler(event, context, callback);
      if (result && typeof result.then === 'function') {
        result.then(context.succeed, (err) => context.fail(err === undefined || err === null ? new Error(String(err)) : err));
      }
    } catch (e) {
      if (context) {
        context.done(e);
      } else {
        this.report(e);
      }
    }
  }
}

function fatal(error) {
  process.stderr.write(`[kumo bootstrap] ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
}

// --- Start-up ----------------------------------------------------------------------

/** A pre-started runtime waits here for its function's environment. */
function awaitAssignment() {
  const assignment = JSON.parse(fs.readFileSync(0, 'utf8'));
  for (const key of Object.keys(process.env)) {
    delete process.env[key];
  }
  Object.assign(process.env, assignment);
  // NODE_PATH is read when the module system starts: read it again.
  require('module')._initPaths();
  process.chdir(process.env.LAMBDA_TASK_ROOT || '/var/task');
}

/**
 * Makes writes to stdout and stderr synchronous (Node makes pipes
 * asynchronous): a line is in the log before the answer is posted, and a
 * handler printing faster than the log is read waits instead of buffering
 * without bound.
 */
function blockingOutput() {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream._handle && typeof stream._handle.setBlocking === 'function') {
      stream._handle.setBlocking(true);
    }
  }
}

async function main() {
  blockingOutput();
  if (process.env.KUMO_PREWARMED === '1') {
    awaitAssignment();
  }
  const address = process.env.AWS_LAMBDA_RUNTIME_API;
  if (!address) {
    process.stderr.write('[kumo bootstrap] AWS_LAMBDA_RUNTIME_API is not set\n');
    process.exit(1);
  }
  patchConsole();
  const client = new RuntimeApiClient(address);
  errorSink = (error, exitCode) => {
    const document = errorDocument(error);
    client
      .post('/init/error', JSON.stringify(document), { [ERROR_TYPE_HEADER]: document.errorType })
      .finally(() => process.exit(exitCode));
  };
  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    errorSink(error, 129);
  });
  process.on('unhandledRejection', (reason) => {
    const error = new RuntimeError('Runtime.UnhandledPromiseRejection', String(reason), reason);
    logError('Unhandled Promise Rejection', error);
    errorSink(error, 128);
  });
  process.on('beforeExit', () => beforeExitListener());

  let handler;
  try {
    handler = await loadHandler(process.env.LAMBDA_TASK_ROOT || '/var/task', process.env._HANDLER || '');
  } catch (e) {
    logError('Init Error', e);
    errorSink(e, 1);
    return;
  }
  const scheduleNext = () => setImmediate(() => next().catch(fatal));
  const next = async () => {
    const answer = await client.request('GET', '/invocation/next');
    if (answer.status !== 200) {
      process.stderr.write(`[kumo bootstrap] GET /next answered ${answer.status}: ${answer.body}\n`);
      process.exit(1);
    }
    new Invocation(client, handler, answer.headers, answer.body, scheduleNext).run();
  };
  scheduleNext();
}

main().catch(fatal);
