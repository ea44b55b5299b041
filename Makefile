# deployctl — common tasks. `make demo` runs the main job, `make test` the tests.
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift
RELEASE_BIN := .build/release/deployctl

.PHONY: deps build release test check lint format demo corpus bench clean

# What the build and tests need, installed when missing: SQLite for the state store (GRDB) and libssh2 for the
# SSH provider (apt), and ansible-core for playbook operations (PyPI). The `local` provider's nodes share this
# machine's /usr, so what the recipes install on a node comes from here: SLURM and munge (recipes/slurm-*.yml)
# and the workloads' Python stack (recipes/workload-runtime.yml). Volume staging converts with dcm2niix (PyPI's
# static build) and is tested against a real Orthanc PACS with DICOMweb; dcmtk's dcmdump checks written files.
# On OpenStack, nodes mount a volume attached to another server over sshfs, and a cloud image's default user
# works through sudo (the simulator's nodes have one).
SYSTEM_PACKAGES := iproute2 util-linux openssh-server openssh-client libsqlite3-dev zlib1g-dev libssl-dev skopeo umoci libarchive-tools docker-registry libssh2-1-dev slurmctld slurmd slurm-client munge python3-numpy python3-nibabel python3-pip orthanc orthanc-dicomweb dcmtk libcurl4-openssl-dev openssl libzstd-dev libdeflate-dev debootstrap grub-efi-amd64-bin dosfstools mtools fdisk qemu-utils e2fsprogs python3-keystone python3-openstackclient sshfs sudo
deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $$missing; \
	fi
	@command -v ansible-playbook >/dev/null 2>&1 || { \
		echo "installing ansible-core (playbook operations)"; python3 -m pip install -q ansible-core; }
	@command -v dcm2niix >/dev/null 2>&1 || { \
		echo "installing dcm2niix (DICOM to NIfTI for volume staging)"; python3 -m pip install -q dcm2niix; }
	@python3 -c 'import pydicom, nibabel, numpy' 2>/dev/null || { \
		echo "installing pydicom, nibabel, numpy (the staging tests' synthetic studies and NIfTI checks)"; \
		python3 -m pip install -q pydicom nibabel numpy; }
	@python3 -c 'import torch, monai, pytest' 2>/dev/null || { \
		echo "installing torch 2.13 (CPU, from the local wheel), monai and pytest (the workloads and their tests)"; \
		python3 -m pip install -q "torch==2.13.0" monai==1.6.1 pytest; }
	@/usr/bin/python3 -c 'import torch, monai' 2>/dev/null || { \
		echo "installing torch 2.13 (CPU) and monai for /usr/bin/python3 (the GPU workers' runtime on local nodes)"; \
		PIP_BREAK_SYSTEM_PACKAGES=1 /usr/bin/python3 -m pip install -q "torch==2.13.0" monai==1.6.1; }

build: deps
	$(SWIFT) build

# Statically linked Swift runtime: a cold `validate` starts about 3 ms faster (scripts/bench).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

# The README's test command: unit and golden tests, then the corpus verdict table.
test: build
	$(SWIFT) test
	python3 -m pytest workloads -q
	DEPLOYCTL=.build/debug/deployctl scripts/corpus-check.sh

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

format:
	$(SWIFT) format format --in-place --recursive Sources Tests Package.swift

# Everything CI checks: warnings are errors (set in Package.swift), lint, tests.
check: lint test

# The main job: validate and plan the bone-density study, deploy it on this machine (local provider), show it
# working, scale it, and remove it (scripts/demo.sh).
demo: release
	scripts/demo.sh $(RELEASE_BIN)

corpus: build
	DEPLOYCTL=.build/debug/deployctl scripts/corpus-check.sh

# Side-by-side benchmarks: validation against OpenStack's tosca-parser, anonymisation against dicom-anonymizer (both
# installed into scripts/bench/.venv from PyPI), appliance build and push against umoci and skopeo, elastic
# policies against CLUES-like baselines, parallel `up`.
bench: release
	python3 scripts/bench/validate-bench.py
	scripts/bench/elastic-bench.sh .build/release/deployctl
	python3 scripts/bench/anonymise-bench.py .build/release/deployctl
	python3 scripts/bench/anonymise-bench.py .build/release/deployctl --rows 64 --cols 64 --slices 120
	python3 scripts/bench/appliance-bench.py .build/release/deployctl
	@if [ "$$(id -u)" = 0 ]; then scripts/bench/up-bench.sh .build/release/deployctl; \
	else echo "up-bench skipped: the local provider needs root"; fi

clean:
	rm -rf .build
