// Package zapslog routes the zap logs of etcd's packages (WAL, snapshotter,
// rafthttp) into a log/slog logger, so a kvraft process has one log stream.
package zapslog
