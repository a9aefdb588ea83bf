namespace DataMarket.Valuation.LoGra;

/// <summary>How the per-layer projections P_in and P_out are initialised.</summary>
public enum ProjectionInit
{
    /// <summary>Seeded uniform entries in ±1/sqrt(d), d the width being projected (LogIX's kaiming-uniform).</summary>
    Random,

    /// <summary>Top eigenvectors of the uncentred covariances E[x xᵀ] and E[dy dyᵀ] over tokens (one extra pass).</summary>
    Pca,

    /// <summary>P = I (rank equals the width): the exact layer gradient, for verification on small models.</summary>
    Identity,
}

/// <summary>Preconditioner applied to the query side, per layer block.</summary>
public enum Preconditioning
{
    /// <summary>(C + λI)⁻¹ with C = (1/N) Σ g gᵀ, the empirical Fisher in projected space.</summary>
    Raw,

    /// <summary>No preconditioning: the plain gradient dot product.</summary>
    Identity,
}

/// <summary>How a query-train pair is scored.</summary>
public enum ScoreMode
{
    /// <summary>ĝ_qᵀ g_t.</summary>
    Dot,

    /// <summary>ĝ_qᵀ g_t / sqrt(g_tᵀ (C + λI)⁻¹ g_t): only the train side is normalised, as in LogIX.</summary>
    Cosine,
}

/// <summary>Element type of a gradient store file.</summary>
public enum GradientDType
{
    Float32,
    Float16,

    /// <summary>For verification against float64 references; production stores use float32 or float16.</summary>
    Float64,
}

/// <summary>Which Linear layers are watched and how their gradients are projected.</summary>
public sealed record ProjectionOptions
{
    public const int DefaultRank = 64;

    /// <summary>Rank per side; each side is clamped to its layer width. A rank above both widths of a watched layer is an error.</summary>
    public int Rank { get; init; } = DefaultRank;

    public ProjectionInit Init { get; init; } = ProjectionInit.Random;

    public ulong Seed { get; init; } = 1;

    /// <summary>
    /// Name filters: a layer is watched when its name (its weight's path without ".weight", e.g. "layers.0" or
    /// "blocks.1.mlp.fc") contains any of them. Null or empty watches every Linear layer.
    /// </summary>
    public IReadOnlyList<string>? WatchedLayers { get; init; }
}

/// <summary>Bad LoGra input (a rank too large for a layer, a store from another model, an empty task): the message says what and where.</summary>
public sealed class LograException(string message, Exception? inner = null) : Exception(message, inner);
