// Command trainer runs the trainer service: it trains, evaluates and gates the failure-risk model (etl_ml_training, step 3).
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/trainer/internal/trainer"
)

func main() { service.Run(events.Trainer, trainer.Register) }
