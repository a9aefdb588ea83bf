using System.Text.Json;
using System.Text.Json.Serialization;

namespace DataMarket.Torch.Models;

/// <summary>
/// Shape of a proxy model, saved as JSON beside every checkpoint (<c>model.safetensors</c> → <c>model.json</c>) so
/// width, depth, heads and context need not be guessed when it is loaded again.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>"mlp" or "gpt".</summary>
    public required string Architecture { get; init; }

    // MLP
    public int InputWidth { get; init; }
    public IReadOnlyList<int> HiddenWidths { get; init; } = [];
    public int OutputWidth { get; init; }

    // GPT
    public int ContextLength { get; init; } = 64;
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 2;
    public int Width { get; init; } = 64;
    public int VocabularySize { get; init; } = 256;

    public const string Mlp = "mlp";
    public const string Gpt = "gpt";

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static ModelConfig ForMlp(int inputWidth, IReadOnlyList<int> hidden, int outputWidth) =>
        new() { Architecture = Mlp, InputWidth = inputWidth, HiddenWidths = hidden, OutputWidth = outputWidth };

    public static ModelConfig ForGpt(int contextLength = 64, int layers = 2, int heads = 2, int width = 64) =>
        new() { Architecture = Gpt, ContextLength = contextLength, Layers = layers, Heads = heads, Width = width };

    /// <summary>The config file that belongs to <paramref name="checkpoint"/>: same folder and name, extension .json.</summary>
    public static string PathBeside(string checkpoint) => Path.ChangeExtension(checkpoint, ".json");

    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    public static ModelConfig Load(string path)
    {
        ModelConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<ModelConfig>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path}: not a model config ({e.Message}).", e);
        }

        if (config is null || (config.Architecture != Mlp && config.Architecture != Gpt))
        {
            throw new CheckpointException($"{path}: field 'architecture' must be '{Mlp}' or '{Gpt}'.");
        }

        return config;
    }
}

/// <summary>A checkpoint or its config cannot be used; the message names the file and the tensor or field.</summary>
public sealed class CheckpointException(string message, Exception? inner = null) : Exception(message, inner);
