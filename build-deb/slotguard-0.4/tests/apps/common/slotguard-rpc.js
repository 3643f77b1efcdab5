'use strict';
// slotguard-rpc.js: a small JSON-RPC 2.0 client for slotguardd's Unix socket, with no
// dependencies (node:net only). Shared by the Node applications under tests/apps/.
//
//   const { SlotguardClient } = require('../common/slotguard-rpc');
//   const sg = new SlotguardClient(process.env.SLOTGUARD_SOCKET);
//   const booking = await sg.call('reserve', { slot_id: 1, holder: 'ann', actor: 'web-42' });
//   const [a, b] = await sg.batch([['update_versioned', {...}], ['update_versioned', {...}]]);
//   sg.close();
//
// One connection carries requests one after another; answers come back in order, one JSON line
// each. A failed call rejects with a SlotguardError carrying the daemon's error.data: reason
// ('version_conflict', 'sold_out', ...), sqlstate, detail, hint, and all of error.data as .data
// (e.g. .data.current_version of a version_conflict). A batch runs in one database
// transaction: if any call fails, batch() rejects with the first failing call's error (the others
// were rolled back) and err.index tells which call it was.
const net = require('node:net');

class SlotguardError extends Error {
  constructor(error, index) {
    super(error.message);
    this.name = 'SlotguardError';
    this.code = error.code; // JSON-RPC code
    const data = error.data || {};
    this.reason = data.reason;
    this.sqlstate = data.sqlstate;
    this.detail = data.detail;
    this.hint = data.hint;
    // Everything the daemon added: for version_conflict table, key, expected_version and
    // current_version; for overlap rule, conflicting_key, conflicting_period; for
    // constraint_violation constraint and table.
    this.data = data;
    this.index = index;
  }
}

class SlotguardClient {
  constructor(socketPath, { timeoutMs = 10000 } = {}) {
    this.socketPath = socketPath;
    this.timeoutMs = timeoutMs;
    this.socket = null;
    this.buffer = '';
    this.pending = []; // in request order: { resolve, reject, timer }
    this.nextId = 1;
  }

  connect() {
    if (this.socket) return;
    const socket = net.createConnection(this.socketPath);
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      this.buffer += chunk;
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const waiter = this.pending.shift();
        if (!waiter) continue;
        clearTimeout(waiter.timer);
        try {
          waiter.resolve(JSON.parse(line));
        } catch (e) {
          waiter.reject(e);
        }
      }
    });
    const failAll = (err) => {
      for (const w of this.pending.splice(0)) {
        clearTimeout(w.timer);
        w.reject(err);
      }
      this.socket = null;
      this.buffer = '';
    };
    socket.on('error', failAll);
    socket.on('close', () => failAll(new Error('slotguardd closed the connection')));
    this.socket = socket;
  }

  send(payload) {
    this.connect();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`slotguardd did not answer within ${this.timeoutMs} ms`));
        this.close(); // the answer order is lost: start over on a new connection
      }, this.timeoutMs);
      this.pending.push({ resolve, reject, timer });
      this.socket.write(JSON.stringify(payload) + '\n');
    });
  }

  async call(method, params = {}) {
    const answer = await this.send({ jsonrpc: '2.0', id: this.nextId++, method, params });
    if (answer.error) throw new SlotguardError(answer.error);
    return answer.result;
  }

  // batch([[method, params], ...]) → results in order, all in one transaction.
  async batch(calls) {
    const requests = calls.map(([method, params]) => ({
      jsonrpc: '2.0',
      id: this.nextId++,
      method,
      params: params || {},
    }));
    const answers = await this.send(requests);
    if (!Array.isArray(answers)) throw new SlotguardError(answers.error || { message: 'bad answer' });
    const byId = new Map(answers.map((a) => [a.id, a]));
    const ordered = requests.map((r) => byId.get(r.id));
    // The call that failed carries its own error; the others say "rolled back: ...".
    const failedIndex = ordered.findIndex(
      (a) => a && a.error && !/^rolled back/.test(a.error.message),
    );
    if (failedIndex >= 0) throw new SlotguardError(ordered[failedIndex].error, failedIndex);
    const anyError = ordered.findIndex((a) => !a || a.error);
    if (anyError >= 0) {
      throw new SlotguardError((ordered[anyError] || {}).error || { message: 'no answer' }, anyError);
    }
    return ordered.map((a) => a.result);
  }

  close() {
    if (this.socket) {
      this.socket.end();
      this.socket.destroy();
      this.socket = null;
    }
  }
}

module.exports = { SlotguardClient, SlotguardError };
