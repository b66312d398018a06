// Command featurejob runs the featurejob service: it computes per-asset features from the extracted Parquet, locally or on Dataproc (etl_ml_training, step 2).
// Until its pipeline step is built it serves health checks and dead-letters
// the events pushed to it, which fails its run step with that reason.
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
)

func main() { service.Main(service.Plain(events.Featurejob)) }
