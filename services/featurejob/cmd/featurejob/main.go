// Command featurejob runs the featurejob service: it computes per-asset
// features from the extracted Parquet, locally or on Dataproc
// (etl_ml_training, step 2).
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/featurejob"
)

func main() { service.Run(events.Featurejob, featurejob.Register) }
