// What the processes of `serve --workers N` say to each other over node:cluster's IPC channel
// (JSON). Workers never talk to each other directly: the primary relays, so a worker that dies
// takes no one's channel with it.
//
//   worker → primary  hello                  it listens for messages (one sent before is lost)
//   primary → worker  start                  what to build and where to listen
//   worker → primary  ready | failed         listening (the leader adds the banner), or why not
//   follower → primary → leader   admin      an admin or /metrics request a follower received
//   leader → primary → follower   answer     the leader's answer to it
//   leader → primary  ask                    a question for every other process: its metrics, or
//                                            to adopt a change to a real server (a failover), or
//                                            a step of a shard move's switch-over
//   primary → follower  ask                  the question
//   follower → primary  reply                its answer
//   primary → leader  replies                every answer given in time, and who did not answer
//   leader → primary → followers  apply      an admin change every process must make too (leases, service time, lag)
//   primary → worker  stop                   close and exit

import type { TierChange } from '../../sim/faults.ts';
import type { MetricsState } from '../../sim/observability/metrics.ts';
import type { BuildOptions } from '../../sim/topology.ts';
import type { TopologyConfig } from '../../sim/topology-config.ts';
import type { BuildAppOptions } from '../app.ts';

/** What a server process of the tier is given at start. */
export interface WorkerStart {
  type: 'start';
  /** 0 … processes − 1; 0 is the leader, which answers the admin API and /metrics for the tier. */
  index: number;
  processes: number;
  port: number;
  host: string;
  config: TopologyConfig;
  seed: number;
  topology: Omit<BuildOptions, 'config' | 'seed' | 'tier' | 'onNotice' | 'onQueueNotice' | 'clock'>;
  app: Omit<BuildAppOptions, 'topology' | 'serverFactory' | 'control' | 'connectionBook' | 'tier'>;
}

/** What the leader asks every other process (ask), with how long it waits for their replies. */
export type Question =
  | { kind: 'export' }
  | { kind: 'adopt'; change: TierChange }
  /** A shard move's switch-over: stop writing to the shard (and end the writes under way), repoint it, or go on where it was. */
  | { kind: 'move'; step: 'freeze' | 'abort'; group: string; shard: number }
  | { kind: 'move'; step: 'commit'; group: string; shard: number; to: number; arrivedLsn: number };
export type Reply = { kind: 'export'; metrics: MetricsState } | { kind: 'adopt'; writesLost: number; complete: boolean; lostByShard: Array<{ shard: number; writes: number }> } | { kind: 'done' } | { kind: 'error'; message: string };
/** One process's reply, and which process it is. */
export interface ProcessReply {
  index: number;
  pid: number;
  reply: Reply;
}

/** An HTTP request or answer carried over IPC (bodies base64). */
export interface CarriedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  remoteAddress: string;
}
export interface CarriedAnswer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

export type ToWorker =
  | WorkerStart
  | { type: 'admin'; id: number; request: CarriedRequest }
  | { type: 'answer'; id: number; answer: CarriedAnswer }
  | { type: 'ask'; id: number; question: Question }
  | { type: 'replies'; id: number; replies: ProcessReply[]; missing: number[] }
  | { type: 'apply'; request: CarriedRequest }
  | { type: 'stop' };

export type ToPrimary =
  | { type: 'hello' }
  | { type: 'ready'; index: number; address: { address: string; family: string; port: number }; banner?: string }
  | { type: 'failed'; index: number; message: string; code: string | null }
  | { type: 'notice'; index: number; message: string }
  | { type: 'admin'; id: number; request: CarriedRequest }
  | { type: 'answer'; id: number; answer: CarriedAnswer }
  | { type: 'ask'; id: number; question: Question; timeoutMs: number }
  | { type: 'reply'; id: number; reply: Reply }
  | { type: 'apply'; request: CarriedRequest };
