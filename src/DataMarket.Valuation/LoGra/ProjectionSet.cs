using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using DataMarket.Compute;
using DataMarket.Learning.Layers;
using DataMarket.Learning.Models;
using DataMarket.Learning.Serialization;

namespace DataMarket.Valuation.LoGra;

/// <summary>
/// The projections of every watched layer, in the model's forward order; one example's projected gradient is
/// their blocks concatenated (<see cref="Offset"/>), so influence is a sum of per-layer dot products.
/// </summary>
public sealed class ProjectionSet
{
    public ProjectionSet(IReadOnlyList<LayerProjection> layers, ProjectionInit init, ulong seed, string modelFingerprint)
    {
        if (layers.Count == 0)
        {
            throw new LograException("No layer is watched: the name filters match none of the model's Linear layers.");
        }

        Layers = layers;
        Init = init;
        Seed = seed;
        ModelFingerprint = modelFingerprint;
        var offsets = new int[layers.Count];
        int dimension = 0;
        for (int i = 0; i < layers.Count; i++)
        {
            offsets[i] = dimension;
            dimension += layers[i].BlockSize;
        }

        Offsets = offsets;
        Dimension = dimension;
    }

    public IReadOnlyList<LayerProjection> Layers { get; }

    public IReadOnlyList<int> Offsets { get; }

    /// <summary>D: values per example, the sum of the layers' block sizes.</summary>
    public int Dimension { get; }

    public ProjectionInit Init { get; }

    public ulong Seed { get; }

    public string ModelFingerprint { get; }

    public int Offset(int layer) => Offsets[layer];

    /// <summary>Every Linear layer of the model with its name (its weight's path without ".weight").</summary>
    public static IReadOnlyList<(string Name, Linear<T> Layer)> NamedLinearLayers<T>(Model<T> model) where T : unmanaged, IFloatingPointIeee754<T>
    {
        _ = model.Parameters; // assigns parameter names
        return model.LinearLayers.Select(l => (l.Weight.Name.EndsWith(".weight", StringComparison.Ordinal) ? l.Weight.Name[..^".weight".Length] : l.Weight.Name, l)).ToList();
    }

    /// <summary>The watched layers, in forward order.</summary>
    public static IReadOnlyList<(string Name, Linear<T> Layer)> WatchedLayers<T>(Model<T> model, IReadOnlyList<string>? filters) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var all = NamedLinearLayers(model);
        var watched = filters is null || filters.Count == 0 ? all : all.Where(l => filters.Any(f => l.Name.Contains(f, StringComparison.Ordinal))).ToList();
        if (watched.Count == 0)
        {
            throw new LograException($"No Linear layer matches the watched-layer filters {string.Join(", ", filters!.Select(f => $"'{f}'"))}; the model has {string.Join(", ", all.Select(l => l.Name))}.");
        }

        return watched;
    }

    /// <summary>
    /// Random or identity projections for the watched layers. PCA needs covariances: use
    /// <see cref="FromCovariances"/> after a <see cref="CovarianceAccumulator{T}"/> pass.
    /// </summary>
    public static ProjectionSet Create<T>(Model<T> model, ProjectionOptions options) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Init == ProjectionInit.Pca)
        {
            throw new ArgumentException("PCA projections come from FromCovariances.", nameof(options));
        }

        var watched = WatchedLayers(model, options.WatchedLayers);
        var layers = new List<LayerProjection>();
        for (int i = 0; i < watched.Count; i++)
        {
            var (name, layer) = watched[i];
            if (options.Init == ProjectionInit.Identity)
            {
                layers.Add(new LayerProjection(name, layer.InputWidth, layer.OutputWidth, IdentityMatrix(layer.InputWidth), layer.InputWidth,
                    IdentityMatrix(layer.OutputWidth), layer.OutputWidth));
                continue;
            }

            var (inputRank, outputRank) = Ranks(name, layer, options.Rank);
            // One stream per layer, so adding a watched layer does not change the others' projections.
            var random = new SeededRandom(options.Seed ^ StableHash(name));
            var input = new float[inputRank * layer.InputWidth];
            var output = new float[outputRank * layer.OutputWidth];
            float inputBound = 1f / MathF.Sqrt(layer.InputWidth), outputBound = 1f / MathF.Sqrt(layer.OutputWidth);
            random.FillUniform(input.AsSpan(), -inputBound, inputBound);
            random.FillUniform(output.AsSpan(), -outputBound, outputBound);
            layers.Add(new LayerProjection(name, layer.InputWidth, layer.OutputWidth, input, inputRank, output, outputRank));
        }

        return new ProjectionSet(layers, options.Init, options.Seed, ModelFingerprints.Compute(model));
    }

    /// <summary>PCA projections: P_in and P_out are the top-k eigenvectors (as rows) of each layer's uncentred covariances.</summary>
    public static ProjectionSet FromCovariances<T>(CovarianceAccumulator<T> covariances, ProjectionOptions options, ComputeBackend? backend = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(covariances);
        backend ??= ComputeBackends.Default.Backend;
        if (covariances.Tokens == 0)
        {
            throw new LograException("PCA initialisation saw no tokens; the covariance pass needs at least one example.");
        }

        var layers = new List<LayerProjection>();
        for (int i = 0; i < covariances.Layers.Count; i++)
        {
            var (name, layer) = covariances.Layers[i];
            var (inputRank, outputRank) = Ranks(name, layer, options.Rank);
            layers.Add(new LayerProjection(name, layer.InputWidth, layer.OutputWidth,
                TopEigenvectors(covariances.InputCovariance(i), layer.InputWidth, inputRank, backend), inputRank,
                TopEigenvectors(covariances.OutputGradientCovariance(i), layer.OutputWidth, outputRank, backend), outputRank));
        }

        return new ProjectionSet(layers, ProjectionInit.Pca, options.Seed, covariances.ModelFingerprint);
    }

    /// <summary>Per-layer scalar rescaling of P_in and P_out (scores are invariant; used by tests).</summary>
    public ProjectionSet Scaled(IReadOnlyList<(float Input, float Output)> factors) =>
        new(Layers.Select((l, i) => l.Scaled(factors[i].Input, factors[i].Output)).ToList(), Init, Seed, ModelFingerprint);

    /// <summary>Checks that this projection fits <paramref name="model"/>: same fingerprint and layers.</summary>
    public void EnsureMatches<T>(Model<T> model) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var fingerprint = ModelFingerprints.Compute(model);
        if (fingerprint != ModelFingerprint)
        {
            throw new LograException($"The projection was made for model {ModelFingerprint[..12]}, not this model ({fingerprint[..12]}).");
        }
    }

    public void Save(string path)
    {
        var tensors = new List<KeyValuePair<string, SafetensorsTensor>>();
        foreach (var layer in Layers)
        {
            tensors.Add(KeyValuePair.Create($"{layer.Name}.input", new SafetensorsTensor("F32", [layer.InputRank, layer.InputWidth], MemoryMarshal.AsBytes(layer.InputProjection.AsSpan()).ToArray())));
            tensors.Add(KeyValuePair.Create($"{layer.Name}.output", new SafetensorsTensor("F32", [layer.OutputRank, layer.OutputWidth], MemoryMarshal.AsBytes(layer.OutputProjection.AsSpan()).ToArray())));
        }

        var metadata = new Dictionary<string, string>
        {
            ["layers"] = string.Join(",", Layers.Select(l => l.Name)),
            ["init"] = Init.ToString().ToLowerInvariant(),
            ["seed"] = Seed.ToString(CultureInfo.InvariantCulture),
            ["model_fingerprint"] = ModelFingerprint,
        };
        using var file = File.Create(path);
        Safetensors.Write(file, tensors, metadata);
    }

    public static ProjectionSet Load(string path)
    {
        try
        {
            using var file = File.OpenRead(path);
            var (tensors, metadata) = Safetensors.Read(file);
            var layers = new List<LayerProjection>();
            foreach (var name in metadata["layers"].Split(','))
            {
                var input = tensors[$"{name}.input"];
                var output = tensors[$"{name}.output"];
                layers.Add(new LayerProjection(name, input.Shape[1], output.Shape[1], MemoryMarshal.Cast<byte, float>(input.Data).ToArray(), input.Shape[0],
                    MemoryMarshal.Cast<byte, float>(output.Data).ToArray(), output.Shape[0]));
            }

            return new ProjectionSet(layers, Enum.Parse<ProjectionInit>(metadata["init"], ignoreCase: true),
                ulong.Parse(metadata["seed"], CultureInfo.InvariantCulture), metadata["model_fingerprint"]);
        }
        catch (Exception exception) when (exception is KeyNotFoundException or SafetensorsFormatException or FormatException or ArgumentException)
        {
            throw new LograException($"{path}: not a LoGra projection file ({exception.Message})", exception);
        }
    }

    /// <summary>
    /// Checks that this projection is the one <paramref name="options"/> asks for on <paramref name="model"/> (same init,
    /// seed, watched layers and ranks), so that a reused store is never scored as if it were another configuration.
    /// </summary>
    public void EnsureConfiguredAs<T>(Model<T> model, ProjectionOptions options) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var watched = WatchedLayers(model, options.WatchedLayers);
        var expected = watched.Select(l => options.Init == ProjectionInit.Identity ? (l.Name, l.Layer.InputWidth, l.Layer.OutputWidth) : (l.Name, Ranks(l.Name, l.Layer, options.Rank).InputRank, Ranks(l.Name, l.Layer, options.Rank).OutputRank));
        var actual = Layers.Select(l => (l.Name, l.InputRank, l.OutputRank));
        if (Init != options.Init || (Init == ProjectionInit.Random && Seed != options.Seed) || !expected.SequenceEqual(actual))
        {
            throw new LograException($"The store's projection ({Init.ToString().ToLowerInvariant()}, seed {Seed}, layers {string.Join(", ", Layers.Select(l => $"{l.Name} {l.OutputRank}x{l.InputRank}"))}) " +
                "is not the one asked for; use a new store folder or the same --rank, --init, --seed and --layers.");
        }
    }

    private static (int InputRank, int OutputRank) Ranks<T>(string name, Linear<T> layer, int rank) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (rank < 1)
        {
            throw new LograException($"The rank must be at least 1, got {rank}.");
        }

        int largest = Math.Max(layer.InputWidth, layer.OutputWidth);
        if (rank > largest)
        {
            throw new LograException($"Rank {rank} is larger than layer '{name}' ({layer.InputWidth} -> {layer.OutputWidth}); use a rank of at most {largest}.");
        }

        return (Math.Min(rank, layer.InputWidth), Math.Min(rank, layer.OutputWidth));
    }

    private static float[] IdentityMatrix(int n)
    {
        var result = new float[n * n];
        for (int i = 0; i < n; i++)
        {
            result[i * n + i] = 1f;
        }

        return result;
    }

    private static float[] TopEigenvectors(double[] covariance, int n, int k, ComputeBackend backend)
    {
        var eigenvalues = new double[n];
        var eigenvectors = new double[n * n];
        backend.SymmetricEigen(covariance, n, eigenvalues, eigenvectors);
        // Ascending eigenvalues, vectors in columns: row r of P is column n - 1 - r.
        var result = new float[k * n];
        for (int r = 0; r < k; r++)
        {
            int column = n - 1 - r;
            for (int j = 0; j < n; j++)
            {
                result[r * n + j] = (float)eigenvectors[j * n + column];
            }
        }

        return result;
    }

    private static ulong StableHash(string text)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        return BitConverter.ToUInt64(hash, 0);
    }
}

/// <summary>A model's identity for stores and projections: SHA-256 over parameter names, shapes, element type and values.</summary>
public static class ModelFingerprints
{
    public static string Compute<T>(Model<T> model) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(model);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(typeof(T).Name));
        foreach (var parameter in model.Parameters)
        {
            hash.AppendData(Encoding.UTF8.GetBytes($"|{parameter.Name}[{string.Join(",", parameter.Shape)}]"));
            hash.AppendData(MemoryMarshal.AsBytes(parameter.Value.AsSpan()));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
