package chaos_test

import "time"

// The specs' vocabulary (Spec, Play, At and the faults, ExpectClean,
// StartLab, the lab probes) lives in specs/speclab.

const ms = time.Millisecond
