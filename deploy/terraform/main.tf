# One or more browser-worker VMs: Debian 12, only HTTPS open (and SSH from the admins), IMDSv2
# only, encrypted disk, an Elastic IP each. cloud-init (../cloud-init.yaml) prepares the OS;
# ../ansible/playbook.yml installs the worker. No VNC or noVNC port is opened: viewers go
# through nginx (443) to the worker's own token-gated /vnc/ bridge.

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.aws_region
}

data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"] # Debian

  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

resource "aws_security_group" "worker" {
  name        = "${var.project_name}-sg"
  description = "browser-worker: HTTPS from the API clients, SSH from the admins"
  vpc_id      = data.aws_vpc.default.id

  ingress {
    description = "HTTPS: API, CDP, events and VNC viewers through nginx"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.api_cidrs
  }

  dynamic "ingress" {
    for_each = length(var.admin_cidrs) > 0 ? [1] : []
    content {
      description = "SSH from the admins"
      from_port   = 22
      to_port     = 22
      protocol    = "tcp"
      cidr_blocks = var.admin_cidrs
    }
  }

  # Job sites, the orchestrator's webhooks, the LLM endpoint, S3, Debian's mirrors.
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = {
    Name    = "${var.project_name}-sg"
    Project = var.project_name
  }
}

resource "aws_instance" "worker" {
  count                  = var.instance_count
  ami                    = var.ami_id != "" ? var.ami_id : data.aws_ami.debian.id
  instance_type          = var.instance_type
  key_name               = var.key_name
  vpc_security_group_ids = [aws_security_group.worker.id]
  subnet_id              = data.aws_subnets.default.ids[0]
  iam_instance_profile   = var.artifacts_bucket != "" ? aws_iam_instance_profile.worker[0].name : null

  # IMDSv2 only (session tokens), and one hop: nothing forwarded from the instance reaches it.
  # The worker itself never fetches link-local or metadata addresses for a caller.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size           = var.root_volume_gb
    volume_type           = "gp3"
    encrypted             = true
    delete_on_termination = true
  }

  user_data = file("${path.module}/../cloud-init.yaml")

  tags = {
    Name    = "${var.project_name}-${count.index + 1}"
    Project = var.project_name
  }

  lifecycle {
    ignore_changes = [ami]
  }
}

resource "aws_eip" "worker" {
  count    = var.instance_count
  instance = aws_instance.worker[count.index].id
  domain   = "vpc"

  tags = {
    Name    = "${var.project_name}-eip-${count.index + 1}"
    Project = var.project_name
  }
}

# Only with artifacts_bucket: the instance may put screenshots there (the worker's object store
# takes the role's credentials from IMDSv2). Set an S3 lifecycle rule on the bucket to expire
# them after a day, as the worker does with its local copies.
resource "aws_iam_role" "worker" {
  count = var.artifacts_bucket != "" ? 1 : 0
  name  = "${var.project_name}-role"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Action    = "sts:AssumeRole"
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy" "artifacts" {
  count = var.artifacts_bucket != "" ? 1 : 0
  role  = aws_iam_role.worker[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["s3:PutObject"]
      Resource = "arn:aws:s3:::${var.artifacts_bucket}/*"
    }]
  })
}

resource "aws_iam_instance_profile" "worker" {
  count = var.artifacts_bucket != "" ? 1 : 0
  name  = "${var.project_name}-profile"
  role  = aws_iam_role.worker[0].name
}

# Only with redis_security_group_id: the workers may reach the fleet's Redis (SPEC §3.9). The
# workers' egress is open already; this is the Redis side.
resource "aws_security_group_rule" "redis_from_workers" {
  count                    = var.redis_security_group_id != "" ? 1 : 0
  description              = "${var.project_name}: workers to the fleet's Redis"
  type                     = "ingress"
  from_port                = var.redis_port
  to_port                  = var.redis_port
  protocol                 = "tcp"
  security_group_id        = var.redis_security_group_id
  source_security_group_id = aws_security_group.worker.id
}
