/*
 * test/drivers/infiniband/rig.ts - the RDMA set-up the tests share; it
 * lives in tools/lib/rdma.ts so the benchmark and the scenario use the
 * same one.
 */
export { rig, connect, pattern, same, RW, ANON, type rig as rig_t, type side } from '../../../tools/lib/rdma.js';
