// Drives mcpvisor's 2025-11-25 tasks with the official TypeScript SDK client
// (client.experimental.tasks: callToolStream, getTask, getTaskResult, listTasks, cancelTask) over
// Streamable HTTP. Usage: node tasks-check.mjs URL. Prints one line per check; exits 1 on any failure.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const url = new URL(process.argv[2]);
let failures = 0;
const check = (name, ok, detail = '') => {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${ok ? '' : `: ${detail}`}`);
  if (!ok) failures += 1;
};

async function connect() {
  const client = new Client({ name: 'mcpvisor-ts-sdk-check', version: '1.0.0' }, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Ada' } }));
  await client.connect(new StreamableHTTPClientTransport(url));
  return client;
}

async function collect(stream, onCreated) {
  const seen = { created: null, statuses: [], result: null, error: null };
  for await (const message of stream) {
    if (message.type === 'taskCreated') {
      seen.created = message.task;
      if (onCreated) await onCreated(message.task);
    } else if (message.type === 'taskStatus') seen.statuses.push(message.task.status);
    else if (message.type === 'result') seen.result = message.result;
    else if (message.type === 'error') seen.error = message.error;
  }
  return seen;
}

const tasks = (client) => client.experimental.tasks;
const call = (client, name, args, onCreated) =>
  collect(tasks(client).callToolStream({ name, arguments: args }, undefined, { task: { ttl: 60000 } }), onCreated);

async function main() {
  const client = await connect();
  try {
    const caps = client.getServerCapabilities();
    check('capability tasks.requests.tools.call', !!caps?.tasks?.requests?.tools?.call, JSON.stringify(caps));

    // create, poll, result
    const add = await call(client, 'add', { a: 2, b: 3 });
    check('create: CreateTaskResult with a taskId', !!add.created?.taskId, JSON.stringify(add));
    check('poll: ends completed', add.statuses.at(-1) === 'completed', JSON.stringify(add.statuses));
    check('result: the tool result', add.result?.structuredContent?.result === 5, JSON.stringify(add.result));
    const got = await tasks(client).getTask(add.created.taskId);
    check('getTask: completed with ttl and createdAt', got.status === 'completed' && got.ttl === 60000 && !!got.createdAt, JSON.stringify(got));

    // list paging
    for (let i = 0; i < 55; i += 1) await tasks(client).callToolStream({ name: 'add', arguments: { a: i, b: 0 } }, undefined, { task: {} }).next();
    const first = await tasks(client).listTasks();
    const second = first.nextCursor ? await tasks(client).listTasks(first.nextCursor) : { tasks: [] };
    const ids = new Set([...first.tasks, ...second.tasks].map((t) => t.taskId));
    check('listTasks: pages of 50 with a cursor', first.tasks.length === 50 && !!first.nextCursor && ids.size === 56, `${first.tasks.length} + ${second.tasks.length}`);
    check('listTasks: newest first', first.tasks[0].createdAt >= first.tasks[49].createdAt, first.tasks[0].createdAt);

    // cancel
    let cancelled = null;
    const slow = await call(client, 'slow', { seconds: 30 }, async (task) => {
      cancelled = await tasks(client).cancelTask(task.taskId);
    });
    check('cancelTask: answers the cancelled task', cancelled?.status === 'cancelled', JSON.stringify(cancelled));
    check('cancel: the stream ends cancelled', slow.statuses.at(-1) === 'cancelled' && !!slow.error, JSON.stringify(slow.statuses));
    let again = null;
    try { await tasks(client).cancelTask(slow.created.taskId); } catch (error) { again = error; }
    check('cancelTask on a terminal task: -32602', again?.code === -32602, String(again));

    // a failing body
    const failing = await call(client, 'failing', {});
    check('failing body: the task ends failed', failing.statuses.at(-1) === 'failed' && !!failing.error, JSON.stringify(failing.statuses));
    const failedResult = await tasks(client).getTaskResult(failing.created.taskId, CallToolResultSchema);
    check('failing body: tasks/result is the isError result', failedResult.isError === true, JSON.stringify(failedResult));

    // input_required: the elicitation arrives on the tasks/result stream, tagged with the task
    const asked = await call(client, 'ask_name', {});
    check('input_required: reached, then answered', asked.statuses.includes('input_required') || asked.result !== null, JSON.stringify(asked.statuses));
    check('input_required: the result uses the answer', asked.result?.content?.[0]?.text === 'hello Ada', JSON.stringify(asked.result));

    // a task that survives the crash tool
    let crashError = null;
    const survivor = await call(client, 'slow', { seconds: 1 }, async () => {
      try { await client.callTool({ name: 'crash', arguments: {} }); } catch (error) { crashError = error; }
    });
    check('crash tool: the session crashed (-32603)', crashError?.code === -32603, String(crashError));
    check('crash survival: the task still completes', survivor.result?.content?.[0]?.text === 'slept 1s', JSON.stringify(survivor));
    const afterCrash = await tasks(client).getTask(survivor.created.taskId);
    check('crash survival: getTask after the crash', afterCrash.status === 'completed', JSON.stringify(afterCrash));
  } finally {
    await client.close();
  }
}

main().then(
  () => { console.log(failures ? `${failures} check(s) failed` : 'all checks passed'); process.exit(failures ? 1 : 0); },
  (error) => { console.log(`FAIL unexpected: ${error?.stack ?? error}`); process.exit(1); },
);
