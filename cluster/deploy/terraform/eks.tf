# EKS for the Ray cluster: KubeRay runs the RayService of cluster/deploy/kubernetes. Two node
# groups: ray-head (GCS, Serve controller, autoscaler; on-demand, one node) and ray-workers
# (device shards and API replicas; spread over the zones, bounds per environment; the KubeRay
# autoscaler asks for pods, the cluster autoscaler adds nodes within these bounds).
data "aws_iam_policy_document" "eks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "eks" {
  name               = "${local.name}-eks"
  assume_role_policy = data.aws_iam_policy_document.eks_assume.json
}

resource "aws_iam_role_policy_attachment" "eks" {
  role       = aws_iam_role.eks.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_cloudwatch_log_group" "eks" {
  name              = "/aws/eks/${local.name}/cluster"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_eks_cluster" "vigil" {
  #checkov:skip=CKV_AWS_38:the public endpoint is off unless eks_public_access_cidrs lists addresses, and its validation refuses 0.0.0.0/0
  name                      = local.name
  version                   = var.kubernetes_version
  role_arn                  = aws_iam_role.eks.arn
  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  vpc_config {
    subnet_ids              = module.network.private_subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = length(var.eks_public_access_cidrs) > 0
    public_access_cidrs     = var.eks_public_access_cidrs
  }
  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.main.arn
    }
  }
  depends_on = [aws_iam_role_policy_attachment.eks, aws_cloudwatch_log_group.eks]
}

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${local.name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
  ])
  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

resource "aws_launch_template" "node" {
  name_prefix = "${local.name}-node-"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 100
      volume_type = "gp3"
      encrypted   = true
      kms_key_id  = aws_kms_key.main.arn
    }
  }
}

resource "aws_eks_node_group" "ray_head" {
  cluster_name    = aws_eks_cluster.vigil.name
  node_group_name = "ray-head"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = module.network.private_subnet_ids
  instance_types  = [var.ray_head_instance_type]
  capacity_type   = "ON_DEMAND"
  labels          = { "vigil.io/ray-role" = "head" }
  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }
  scaling_config {
    desired_size = 1
    min_size     = 1
    max_size     = 2
  }
  update_config {
    max_unavailable = 1
  }
  depends_on = [aws_iam_role_policy_attachment.node]
}

resource "aws_eks_node_group" "ray_workers" {
  cluster_name    = aws_eks_cluster.vigil.name
  node_group_name = "ray-workers"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = module.network.private_subnet_ids
  instance_types  = var.ray_worker_instance_types
  capacity_type   = "ON_DEMAND"
  labels          = { "vigil.io/ray-role" = "worker" }
  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }
  scaling_config {
    desired_size = var.ray_worker_min
    min_size     = var.ray_worker_min
    max_size     = var.ray_worker_max
  }
  update_config {
    max_unavailable = 1
  }
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size] # the cluster autoscaler owns it
  }
  depends_on = [aws_iam_role_policy_attachment.node]
}
