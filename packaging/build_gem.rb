# frozen_string_literal: true

# Builds the Ruby binding's gems from bindings/ruby/tasker.gemspec, offline:
#
#   ruby packaging/build_gem.rb platform build/libtasker.so.1 dist
#       -> dist/tasker-<version>-<cpu>-linux.gem, with the library as lib/tasker/libtasker.so.1
#   ruby packaging/build_gem.rb source <staged Go sources> dist
#       -> dist/tasker-<version>.gem, whose ext/tasker/extconf.rb builds the library with
#          `go build` at install time from the sources in ext/tasker/src
#
# Each gem is assembled in a staging folder under build/gem/ so that the checkout's
# bindings/ruby stays as it is. Prints the gem's path.

require "fileutils"
require "rubygems"
require "rubygems/package"

ROOT = File.expand_path("..", __dir__)
RUBY_DIR = File.join(ROOT, "bindings", "ruby")

kind, input, out = ARGV
abort "usage: ruby #{$PROGRAM_NAME} platform LIBRARY OUTDIR | source GOSRC OUTDIR" unless %w[platform source].include?(kind) && input && out
out = File.expand_path(out)
input = File.expand_path(input)

stage = File.join(ROOT, "build", "gem", kind)
FileUtils.rm_rf(stage)
FileUtils.mkdir_p(stage)
%w[lib examples README.md tasker.gemspec].each do |entry|
  FileUtils.cp_r(File.join(RUBY_DIR, entry), stage)
end
Dir.glob(File.join(stage, "lib", "tasker", "libtasker.so*")).each { |f| File.delete(f) } # never a stray copy

spec = Dir.chdir(stage) { Gem::Specification.load(File.join(stage, "tasker.gemspec")) }
abort "cannot load #{stage}/tasker.gemspec" unless spec
abi = File.read(File.join(RUBY_DIR, "lib", "tasker", "native.rb"))[/ABI_VERSION = (\d+)/, 1]
soname = "libtasker.so.#{abi}"

case kind
when "platform"
  abort "#{input} is not an ELF shared library" unless File.binread(input, 4) == "\x7fELF".b
  FileUtils.cp(input, File.join(stage, "lib", "tasker", soname))
  File.chmod(0o755, File.join(stage, "lib", "tasker", soname))
  spec.files += ["lib/tasker/#{soname}"]
  cpu = RbConfig::CONFIG["host_cpu"]
  cpu = "x86_64" if cpu == "amd64"
  spec.platform = Gem::Platform.new("#{cpu}-linux")
when "source"
  abort "#{input}/go.mod missing: stage the Go sources first (make gem-source)" unless File.file?(File.join(input, "go.mod"))
  ext = File.join(stage, "ext", "tasker")
  FileUtils.mkdir_p(ext)
  FileUtils.cp(File.join(RUBY_DIR, "ext", "tasker", "extconf.rb"), ext)
  FileUtils.cp_r(input, File.join(ext, "src"))
  spec.files += Dir.chdir(stage) { Dir.glob("ext/**/*", File::FNM_DOTMATCH).select { |f| File.file?(f) } }.sort
  spec.extensions = ["ext/tasker/extconf.rb"]
  spec.requirements << "Go #{File.read(File.join(input, 'go.mod'))[/^go (\S+)/, 1]} or newer and a C compiler, to build libtasker at install time"
end

file = Dir.chdir(stage) { Gem::Package.build(spec) }
FileUtils.mkdir_p(out)
FileUtils.mv(File.join(stage, file), File.join(out, file))
puts File.join(out, file)
