output "worker_ips" {
  description = "Elastic IPs of the workers."
  value       = aws_eip.worker[*].public_ip
}

output "api_urls" {
  description = "Base URLs (BW_PUBLIC_URL) once DNS or the self-signed certificate is sorted out."
  value       = [for eip in aws_eip.worker : "https://${eip.public_ip}"]
}

output "ssh_commands" {
  description = "SSH to each worker (Debian's AMI user is admin)."
  value       = [for eip in aws_eip.worker : "ssh -i ~/.ssh/${var.key_name}.pem admin@${eip.public_ip}"]
}

output "ansible_inventory" {
  description = "An inventory for ../ansible/playbook.yml (make inventory writes it)."
  value = join("\n", concat(
    ["[workers]"],
    [for i, eip in aws_eip.worker : "worker-${i + 1} ansible_host=${eip.public_ip} ansible_user=admin"],
    [""]
  ))
}
