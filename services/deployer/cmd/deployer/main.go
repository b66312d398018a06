// Command deployer runs the deployer service: it deploys the champion model (local predictor or Vertex AI) and batch-scores the fleet (etl_ml_training, step 4), and monitors it daily — drift, realized performance, shadow promotion, retraining (model_monitoring, step 3).
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/deployer/internal/deployer"
)

func main() { service.Run(events.Deployer, deployer.Register) }
