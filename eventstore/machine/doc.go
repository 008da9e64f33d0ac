// Package machine tells what the machine a process runs on offers it, for
// the settings sized by it: the memory of the private PostgreSQL cluster
// (pgcluster) and the Go collector's limit in the simulated year
// (workers/simulation).
package machine
