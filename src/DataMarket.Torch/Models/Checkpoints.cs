using System.Collections;
using System.Globalization;
using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace DataMarket.Torch.Models;

/// <summary>
/// Reads and writes proxy-model checkpoints: safetensors (<c>.safetensors</c>) and PyTorch state dicts saved with
/// <c>torch.save(model.state_dict(), ...)</c> (<c>.pt</c>, <c>.pth</c>, <c>.bin</c>). The shape comes from the JSON
/// config beside the checkpoint, or is inferred from tensor shapes when there is none.
/// </summary>
public static partial class Checkpoints
{
    /// <summary>Loads <paramref name="path"/> into a fresh module of the architecture it holds.</summary>
    public static (ModelConfig Config, nn.Module Module) Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new CheckpointException($"{path}: no such checkpoint file.");
        }

        var state = ReadStateDict(path);
        try
        {
            var configPath = ModelConfig.PathBeside(path);
            var config = File.Exists(configPath) ? ModelConfig.Load(configPath) : InferConfig(state, path);
            var module = Build(config);
            Apply(module, state, path);
            return (config, module);
        }
        finally
        {
            foreach (var tensor in state.Values)
            {
                tensor.Dispose();
            }
        }
    }

    /// <summary>Writes the module's state dict as safetensors and its config beside it.</summary>
    public static void Save(nn.Module module, ModelConfig config, string path)
    {
        Safetensors.SaveStateDict(path, module.state_dict());
        config.Save(ModelConfig.PathBeside(path));
    }

    public static nn.Module Build(ModelConfig config) => config.Architecture switch
    {
        ModelConfig.Mlp => new TabularMlp(config),
        ModelConfig.Gpt => new ByteGpt(config),
        _ => throw new CheckpointException($"Unknown architecture '{config.Architecture}'."),
    };

    public static Dictionary<string, Tensor> ReadStateDict(string path)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        try
        {
            switch (extension)
            {
                case ".safetensors":
                    return Safetensors.LoadStateDict(path);
                case ".pt" or ".pth" or ".bin":
                    var table = PyTorchUnpickler.UnpickleStateDict(path);
                    var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                    foreach (DictionaryEntry entry in table)
                    {
                        if (entry.Value is Tensor tensor)
                        {
                            state[(string)entry.Key] = tensor;
                        }
                    }

                    return state;
                default:
                    throw new CheckpointException($"{path}: unknown checkpoint type '{extension}' (use .safetensors, or .pt/.pth/.bin from torch.save(model.state_dict())).");
            }
        }
        catch (Exception e) when (e is NotImplementedException or InvalidDataException or InvalidCastException or IOException or ArgumentException or InvalidOperationException or Razorvine.Pickle.PickleException)
        {
            throw new CheckpointException($"{path}: cannot read the checkpoint ({e.Message}).", e);
        }
    }

    /// <summary>
    /// The config a state dict implies when no config file sits beside it. Everything but the GPT's head count shows in
    /// tensor shapes; without a config the GPT gets 2 heads (the default every proxy GPT here is trained with).
    /// </summary>
    public static ModelConfig InferConfig(IReadOnlyDictionary<string, Tensor> state, string path)
    {
        if (state.TryGetValue("wte.weight", out var wte) && state.TryGetValue("wpe.weight", out var wpe))
        {
            var layers = state.Keys.Select(k => BlockIndex().Match(k)).Where(m => m.Success)
                .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).DefaultIfEmpty(-1).Max() + 1;
            return new ModelConfig
            {
                Architecture = ModelConfig.Gpt,
                VocabularySize = (int)wte.shape[0],
                Width = (int)wte.shape[1],
                ContextLength = (int)wpe.shape[0],
                Layers = layers,
                Heads = 2,
            };
        }

        var linear = state.Keys.Select(k => LayerWeight().Match(k)).Where(m => m.Success)
            .Select(m => (Index: int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), Key: m.Value))
            .OrderBy(l => l.Index).ToList();
        if (linear.Count == 0)
        {
            throw new CheckpointException($"{path}: neither an MLP (tensor 'layers.0.weight') nor a GPT (tensors 'wte.weight', 'wpe.weight') state dict, and no config at {ModelConfig.PathBeside(path)}.");
        }

        var shapes = linear.Select(l => state[l.Key].shape).ToList();
        return ModelConfig.ForMlp((int)shapes[0][1], shapes.Take(shapes.Count - 1).Select(s => (int)s[0]).ToArray(), (int)shapes[^1][0]);
    }

    /// <summary>
    /// Copies <paramref name="state"/> into <paramref name="module"/>, refusing the first tensor the module expects and
    /// the file lacks or holds in another shape, and the first tensor the file has that the module does not know.
    /// </summary>
    public static void Apply(nn.Module module, IReadOnlyDictionary<string, Tensor> state, string path)
    {
        var expected = module.state_dict();
        foreach (var (name, target) in expected)
        {
            if (!state.TryGetValue(name, out var source))
            {
                throw new CheckpointException($"{path}: tensor '{name}' is missing (expected shape {Shape(target)}).");
            }

            if (!source.shape.SequenceEqual(target.shape))
            {
                throw new CheckpointException($"{path}: tensor '{name}' has shape {Shape(source)}, expected {Shape(target)}.");
            }
        }

        var unexpected = state.Keys.FirstOrDefault(k => !expected.ContainsKey(k));
        if (unexpected is not null)
        {
            throw new CheckpointException($"{path}: tensor '{unexpected}' is not part of this model.");
        }

        using var noGrad = no_grad();
        foreach (var (name, target) in expected)
        {
            target.copy_(state[name].to(target.dtype));
        }
    }

    private static string Shape(Tensor tensor) => $"[{string.Join(", ", tensor.shape)}]";

    [GeneratedRegex(@"^blocks\.(\d+)\.")]
    private static partial Regex BlockIndex();

    [GeneratedRegex(@"^layers\.(\d+)\.weight$")]
    private static partial Regex LayerWeight();
}
