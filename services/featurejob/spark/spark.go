// Package spark ships the PySpark feature script that the Dataproc engine
// runs; it computes the same features as the local engine (see README.md).
package spark

import _ "embed"

// Script is features.py.
//
//go:embed features.py
var Script []byte
