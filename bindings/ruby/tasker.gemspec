# frozen_string_literal: true

require_relative "lib/tasker/version"

Gem::Specification.new do |spec|
  spec.name          = "tasker"
  spec.version       = Tasker::VERSION
  spec.summary       = "Ruby binding of libtasker, a step-dispatch channel (ffi)"
  spec.description   = <<~DESC
    Dispatch step events, run their handlers on a pool of Ruby threads and take
    exactly one completion per event, over libtasker's C ABI. Fork-safe: the
    library is loaded when the first channel is made, not at require time, so
    preforking servers (Puma, Unicorn) can require it in their master.
  DESC
  spec.authors       = ["libtasker contributors"]
  spec.license       = "MIT"
  spec.required_ruby_version = ">= 2.7"

  # Paths relative to this file. `make gem` adds lib/tasker/libtasker.so.1 (the platform gem);
  # `make gem-source` adds ext/ (the source gem, which builds the library with Go at install time).
  spec.files         = Dir.chdir(__dir__) { Dir["lib/**/*.rb", "README.md", "examples/*.rb"] }
  spec.require_paths = ["lib"]

  spec.add_dependency "ffi", ">= 1.15"
  spec.add_development_dependency "minitest", ">= 5.0"

  spec.metadata["rubygems_mfa_required"] = "true"
end
