terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14, < 8"
    }
    # google_project_service_identity (the IAP service agent, control.tf).
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.14, < 8"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
