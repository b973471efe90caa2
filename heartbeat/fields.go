package heartbeat

// fieldNames are the hash's fields in the order a beat writes them.
var fieldNames = [numFields]string{
	fieldWorkerID, fieldState, fieldTimestamp, fieldInterval, fieldService, fieldHostname, fieldContainerID,
	fieldDeploymentEnv, fieldRegion, fieldVersion, fieldStartedAt, fieldJobsProcessed, fieldJobsFailed,
	fieldCurrentJob, fieldMetricsURL, fieldResources, fieldSystem,
}

// FieldNames returns the names of the fields of a heartbeat hash that
// Decode reads, in the order a beat writes them, the optional ones last: what a reader asks for
// with HMGET when it has no use for fields it does not know.
func FieldNames() []string { return append(append([]string(nil), fieldNames[:]...), fieldQuiet) }
