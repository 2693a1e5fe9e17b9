export * from "./types";
export * from "./client";
export * from "./poller";
export * from "./status";
export * from "./events";
export * from "./format";
