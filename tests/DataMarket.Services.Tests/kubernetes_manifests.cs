using System.Diagnostics;
using System.Text.RegularExpressions;
using DataMarket.ServiceDefaults.Messaging;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace DataMarket.Services.Tests;

/// <summary>
/// Renders each overlay with <c>kubectl kustomize</c> (no cluster needed) and checks the invariants the deployment
/// promises. kubectl must be installed where the tests run; a missing kubectl fails the test with that reason.
/// </summary>
public sealed partial class kubernetes_manifests
{
    public static TheoryData<string> Overlays => new() { "dev", "prod" };

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Should_give_every_container_probes_resources_and_a_locked_down_security_context(string overlay)
    {
        var workloads = Render(overlay).Where(d => Kind(d) == "Deployment").ToList();
        Assert.Equal(["catalog", "gateway", "ledger-worker", "settlement", "valuation-worker", "valuation-worker-gpu"], workloads.Select(Name).Order(StringComparer.Ordinal));
        foreach (var workload in workloads)
        {
            var pod = Map(Map(Map(workload, "spec"), "template"), "spec");
            Assert.Equal("true", Text(Map(pod, "securityContext"), "runAsNonRoot"));
            foreach (var container in List(pod, "containers").Cast<Dictionary<object, object>>())
            {
                var where = $"{overlay}: {Name(workload)}/{Text(container, "name")}";
                Assert.True(container.ContainsKey("readinessProbe"), $"{where} has no readiness probe");
                Assert.True(container.ContainsKey("livenessProbe"), $"{where} has no liveness probe");
                var resources = Map(container, "resources");
                Assert.True(Map(resources, "requests").ContainsKey("cpu"), $"{where} requests no CPU");
                Assert.True(Map(resources, "requests").ContainsKey("memory"), $"{where} requests no memory");
                Assert.True(Map(resources, "limits").ContainsKey("memory"), $"{where} has no memory limit");
                var security = Map(container, "securityContext");
                Assert.Equal("true", Text(security, "readOnlyRootFilesystem"));
                Assert.Equal("false", Text(security, "allowPrivilegeEscalation"));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Should_take_secrets_only_by_reference(string overlay)
    {
        var documents = Render(overlay);
        Assert.DoesNotContain(documents, d => Kind(d) == "Secret");
        foreach (var workload in documents.Where(d => Kind(d) == "Deployment"))
        {
            foreach (var container in List(Map(Map(Map(workload, "spec"), "template"), "spec"), "containers").Cast<Dictionary<object, object>>())
            {
                var env = container.TryGetValue("env", out var e) ? ((List<object>)e).Cast<Dictionary<object, object>>().ToList() : [];
                var fromSecrets = env.Where(v => v.ContainsKey("valueFrom")).Select(v => Text(v, "name")).ToHashSet();
                foreach (var variable in env.Where(v => v.ContainsKey("value")))
                {
                    var name = Text(variable, "name");
                    var value = Text(variable, "value");
                    Assert.False(SecretName().IsMatch(name), $"{overlay}: {Name(workload)} sets {name} inline");
                    // A connection string may only carry credentials through references to secret-sourced variables.
                    if (value.Contains("Password=", StringComparison.OrdinalIgnoreCase) || value.Contains('@'))
                    {
                        var references = Reference().Matches(value).Select(m => m.Groups[1].Value).ToList();
                        Assert.NotEmpty(references);
                        Assert.All(references, r => Assert.Contains(r, fromSecrets));
                        Assert.DoesNotMatch(@"(Password=(?!\$\()|://[^$@]*:(?!\$\())", value);
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Should_scale_workers_from_zero_on_the_shard_queues_the_code_uses(string overlay)
    {
        var scaled = Render(overlay).Where(d => Kind(d) == "ScaledObject").ToDictionary(Name);
        var cpu = scaled["valuation-worker"];
        var gpu = scaled["valuation-worker-gpu"];
        Assert.Equal("0", Text(Map(cpu, "spec"), "minReplicaCount"));
        Assert.Equal("0", Text(Map(gpu, "spec"), "minReplicaCount"));
        Assert.Equal(ValuationQueues.Shards, QueueNames(cpu)[0]);
        Assert.Equal([ValuationQueues.GpuShards], QueueNames(gpu));
        Assert.Equal("valuation-worker", Text(Map(Map(cpu, "spec"), "scaleTargetRef"), "name"));
        Assert.Equal("valuation-worker-gpu", Text(Map(Map(gpu, "spec"), "scaleTargetRef"), "name"));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Should_run_the_gpu_pool_apart_on_gpu_nodes(string overlay)
    {
        var documents = Render(overlay);
        var gpu = documents.Single(d => Kind(d) == "Deployment" && Name(d) == "valuation-worker-gpu");
        var pod = Map(Map(Map(gpu, "spec"), "template"), "spec");
        var container = (Dictionary<object, object>)List(pod, "containers")[0];
        Assert.Equal("1", Text(Map(Map(container, "resources"), "limits"), "nvidia.com/gpu"));
        Assert.NotEmpty(Map(pod, "nodeSelector"));
        Assert.Contains(List(pod, "tolerations").Cast<Dictionary<object, object>>(), t => Text(t, "key") == "nvidia.com/gpu");
        Assert.Contains(Env(container), v => Text(v, "name") == "Valuation__Pool" && Text(v, "value") == "gpu");
        var cpu = documents.Single(d => Kind(d) == "Deployment" && Name(d) == "valuation-worker");
        var cpuContainer = (Dictionary<object, object>)List(Map(Map(Map(cpu, "spec"), "template"), "spec"), "containers")[0];
        Assert.False(Map(Map(cpuContainer, "resources"), "limits").ContainsKey("nvidia.com/gpu"));
        Assert.Contains(Env(cpuContainer), v => Text(v, "name") == "Valuation__Pool" && Text(v, "value") == "cpu");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Should_declare_operators_budgets_policies_and_a_shared_volume(string overlay)
    {
        var documents = Render(overlay);
        Assert.Contains(documents, d => Kind(d) == "Cluster" && Text(d, "apiVersion").StartsWith("postgresql.cnpg.io/", StringComparison.Ordinal));
        Assert.Contains(documents, d => Kind(d) == "ScheduledBackup");
        Assert.Contains(documents, d => Kind(d) == "RabbitmqCluster");
        var budgets = documents.Where(d => Kind(d) == "PodDisruptionBudget")
            .Select(d => Text(Map(Map(Map(d, "spec"), "selector"), "matchLabels"), "app.kubernetes.io/name")).ToHashSet();
        foreach (var workload in documents.Where(d => Kind(d) == "Deployment"))
        {
            Assert.Contains(Name(workload), budgets);
        }

        var claim = documents.Single(d => Kind(d) == "PersistentVolumeClaim");
        Assert.Equal(["ReadWriteMany"], List(Map(claim, "spec"), "accessModes").Cast<string>());

        // Default deny, and the only rule open to every source is the public edge's.
        var policies = documents.Where(d => Kind(d) == "NetworkPolicy").ToList();
        Assert.Contains(policies, p => Map(Map(p, "spec"), "podSelector").Count == 0 && !Map(p, "spec").ContainsKey("ingress"));
        var open = policies.Where(p => Map(p, "spec").TryGetValue("ingress", out var rules)
            && ((List<object>)rules).Cast<Dictionary<object, object>>().Any(r => !r.ContainsKey("from"))).ToList();
        Assert.Equal(["public-edge"], open.Select(Name));
        var edgePods = documents.Where(d => Kind(d) == "Deployment"
            && Map(Map(Map(Map(d, "spec"), "template"), "metadata"), "labels").ContainsKey("datamarket/edge")).Select(Name);
        Assert.Equal(["gateway"], edgePods);
    }

    private static List<object> QueueNames(Dictionary<object, object> scaledObject) =>
        List(Map(scaledObject, "spec"), "triggers").Cast<Dictionary<object, object>>()
            .Select(t => (object)Text(Map(t, "metadata"), "queueName")).ToList();

    private static List<Dictionary<object, object>> Env(Dictionary<object, object> container) =>
        List(container, "env").Cast<Dictionary<object, object>>().ToList();

    private static string Kind(Dictionary<object, object> document) => Text(document, "kind");

    private static string Name(Dictionary<object, object> document) => Text(Map(document, "metadata"), "name");

    private static Dictionary<object, object> Map(Dictionary<object, object> node, string key) =>
        node.TryGetValue(key, out var value) && value is Dictionary<object, object> map ? map : [];

    private static List<object> List(Dictionary<object, object> node, string key) =>
        node.TryGetValue(key, out var value) && value is List<object> list ? list : [];

    private static string Text(Dictionary<object, object> node, string key) =>
        node.TryGetValue(key, out var value) ? value?.ToString() ?? "" : "";

    private static List<Dictionary<object, object>> Render(string overlay)
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "DataMarket.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repository root not found above the test binaries");
        }

        var start = new ProcessStartInfo("kubectl", ["kustomize", Path.Combine(root, "k8s", "overlays", overlay)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            throw new InvalidOperationException("kubectl is needed to render the manifests (kubectl kustomize) and was not found", exception);
        }

        using (process)
        {
            var errors = process.StandardError.ReadToEndAsync();
            var yaml = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"kubectl kustomize k8s/overlays/{overlay} failed: {errors.Result}");
            var parser = new Parser(new StringReader(yaml));
            var deserializer = new DeserializerBuilder().Build();
            parser.Consume<StreamStart>();
            var documents = new List<Dictionary<object, object>>();
            while (parser.Accept<DocumentStart>(out _))
            {
                documents.Add(deserializer.Deserialize<Dictionary<object, object>>(parser));
            }

            return documents;
        }
    }

    [GeneratedRegex("(?i)password|secret|token|apikey")]
    private static partial Regex SecretName();

    [GeneratedRegex(@"\$\(([A-Z_]+)\)")]
    private static partial Regex Reference();
}
