module "network" {
  source             = "./modules/network"
  name               = local.name
  cidr               = var.vpc_cidr
  availability_zones = var.availability_zones
  kms_key_arn        = aws_kms_key.main.arn
}

module "replica_network" {
  source             = "./modules/network"
  providers          = { aws = aws.replica }
  name               = "${local.name}-replica"
  cidr               = var.replica_vpc_cidr
  availability_zones = var.replica_availability_zones
  kms_key_arn        = aws_kms_key.replica.arn
}
