// What the processes of `serve --workers N` say to each other over node:cluster's IPC channel
// (JSON). Workers never talk to each other directly: the primary relays, so a worker that dies
// takes no one's channel with it.
//
//   worker → primary  hello                  it listens for messages (one sent before is lost)
//   primary → worker  start                  what to build and where to listen
//   worker → primary  ready | failed         listening (the leader adds the banner), or why not
//   follower → primary → leader   admin      an admin or /metrics request a follower received
//   leader → primary → follower   answer     the leader's answer to it
//   leader → primary  gather                 the tier's metrics are wanted
//   primary → worker  export                 send your metrics
//   worker → primary  state                  its metrics (MetricsState)
//   primary → leader  states                 every worker's that answered in time
//   leader → primary → followers  apply      an admin change every process must make too (leases, service time, lag)
//   primary → worker  stop                   close and exit

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

/** A process's metrics, and which process it is. */
export interface ProcessState {
  index: number;
  pid: number;
  metrics: MetricsState;
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
  | { type: 'export'; id: number }
  | { type: 'states'; id: number; states: ProcessState[]; missing: number[] }
  | { type: 'apply'; request: CarriedRequest }
  | { type: 'stop' };

export type ToPrimary =
  | { type: 'hello' }
  | { type: 'ready'; index: number; address: { address: string; family: string; port: number }; banner?: string }
  | { type: 'failed'; index: number; message: string; code: string | null }
  | { type: 'notice'; index: number; message: string }
  | { type: 'admin'; id: number; request: CarriedRequest }
  | { type: 'answer'; id: number; answer: CarriedAnswer }
  | { type: 'gather'; id: number }
  | { type: 'state'; id: number; state: ProcessState }
  | { type: 'apply'; request: CarriedRequest };
